package main

// Statistics, the results table (text and Markdown) and the CDF chart.

import (
	"bufio"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

type bulkResult struct {
	mibps     float64
	cpuPerMiB float64 // CPU seconds of the client process per MiB
	sysPerMiB float64 // of which system (kernel) time
	wall      time.Duration
}

type results struct {
	opts       options
	machine    string
	torVersion string
	goVersion  string
	gotorRev   string
	netReady   time.Duration
	elapsed    time.Duration

	tr                [2]map[int64][]transfer
	connects          [2][]time.Duration
	freshConnects     [2][]time.Duration
	builds            [2][]time.Duration
	onion             [2][]time.Duration
	hosting           [2][]hostingResult // by the kind hosting the service
	buildFails        [2]int
	metricsBuildSum   float64
	metricsBuildCount float64
	bulk1             [2][]bulkResult
	bulkPar           [2][]bulkResult
	bootCold          [2][]time.Duration
	bootWarm          [2][]time.Duration
	rssIdle           [2]int
	rssAfter          [2]int
	rssStreams        [2]int
	streamsOpen       [2]int
	streamsOpenTime   [2]time.Duration
	streamsLeft       [2]int
	rssStreamsClosed  [2]int
	errors            [2]int
	profileText       string
}

// quantile is the nearest-rank q-quantile of sorted s (NaN when empty).
func quantile(s []float64, q float64) float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(q*float64(len(s)))) - 1
	if i < 0 {
		i = 0
	}
	return s[i]
}

func median(s []float64) float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	s = sorted(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

func sorted(s []float64) []float64 {
	c := append([]float64(nil), s...)
	sort.Float64s(c)
	return c
}

func secs(d []time.Duration) []float64 {
	f := make([]float64, len(d))
	for i, v := range d {
		f[i] = v.Seconds()
	}
	return f
}

// row is one line of the table: a value per client and how the ratio
// gotor / C tor is judged.
type row struct {
	name   string
	unit   string
	v      [2]float64
	target string // "≤ 1.05", "≥ 1.0" or ""
	n      [2]int
}

func (r row) ratio() float64 { return r.v[kindGotor] / r.v[kindCTor] }

func (r row) verdict() string {
	if r.target == "" || math.IsNaN(r.ratio()) {
		return ""
	}
	lim, _ := strconv.ParseFloat(strings.TrimSpace(r.target[len("≤ "):]), 64)
	ok := false
	if strings.HasPrefix(r.target, "≤") {
		ok = r.ratio() <= lim
	} else {
		ok = r.ratio() >= lim
	}
	if ok {
		return "met"
	}
	return "missed"
}

func (r *results) rows() []row {
	var rows []row
	ms := func(d []time.Duration, q float64) float64 {
		if q == 0.5 {
			return median(secs(d)) * 1000
		}
		return quantile(sorted(secs(d)), q) * 1000
	}
	both := func(name, unit, target string, f func(k clientKind) (float64, int)) {
		rw := row{name: name, unit: unit, target: target}
		for _, k := range kinds {
			rw.v[k], rw.n[k] = f(k)
		}
		rows = append(rows, rw)
	}
	for _, size := range transferSizes {
		for _, m := range []struct {
			what string
			get  func(t transfer) time.Duration
		}{{"time to first byte", func(t transfer) time.Duration { return t.ttfb }},
			{"time to last byte", func(t transfer) time.Duration { return t.ttlb }}} {
			for _, q := range []float64{0.5, 0.9} {
				qn := "median"
				target := ""
				if q == 0.9 {
					qn = "p90"
				} else if m.what == "time to first byte" {
					target = "≤ 1.05"
				}
				both(fmt.Sprintf("%s, %s, %s", sizeName(size), m.what, qn), "ms", target, func(k clientKind) (float64, int) {
					var d []time.Duration
					for _, t := range r.tr[k][size] {
						d = append(d, m.get(t))
					}
					return ms(d, q), len(d)
				})
			}
		}
	}
	both("time to first byte, all sizes, median", "ms", "", func(k clientKind) (float64, int) {
		var d []time.Duration
		for _, size := range transferSizes {
			for _, t := range r.tr[k][size] {
				d = append(d, t.ttfb)
			}
		}
		return ms(d, 0.5), len(d)
	})
	for _, q := range []float64{0.5, 0.9} {
		qn := map[float64]string{0.5: "median", 0.9: "p90"}[q]
		both("request sent → first byte (TTFB − CONNECTED), all sizes, "+qn, "ms", "", func(k clientKind) (float64, int) {
			var d []time.Duration
			for _, size := range transferSizes {
				for _, t := range r.tr[k][size] {
					d = append(d, t.ttfb-t.connect)
				}
			}
			return ms(d, q), len(d)
		})
	}
	for _, q := range []float64{0.5, 0.9} {
		qn := map[float64]string{0.5: "median", 0.9: "p90"}[q]
		both("SOCKS request → CONNECTED, prebuilt circuit, "+qn, "ms", "", func(k clientKind) (float64, int) {
			return ms(r.connects[k], q), len(r.connects[k])
		})
	}
	for _, q := range []float64{0.5, 0.9} {
		qn := map[float64]string{0.5: "median", 0.9: "p90"}[q]
		both("SOCKS request → CONNECTED, new SOCKS username (first stream on a clean circuit), "+qn, "ms", "", func(k clientKind) (float64, int) {
			return ms(r.freshConnects[k], q), len(r.freshConnects[k])
		})
	}
	for _, q := range []float64{0.5, 0.9} {
		qn := map[float64]string{0.5: "median", 0.9: "p90"}[q]
		both("circuit build (CIRC LAUNCHED → BUILT), "+qn, "ms", "", func(k clientKind) (float64, int) {
			return ms(r.builds[k], q), len(r.builds[k])
		})
	}
	both("cold .onion, 50 KiB, time to first byte, median", "ms", "", func(k clientKind) (float64, int) {
		return ms(r.onion[k], 0.5), len(r.onion[k])
	})
	// Hosting rows: the columns are the process hosting the service;
	// every fetch is by the client the row names.
	host := func(name, unit, target string, get func(h hostingResult) float64) {
		both("hosting: "+name, unit, target, func(k clientKind) (float64, int) {
			var v []float64
			for _, h := range r.hosting[k] {
				v = append(v, get(h))
			}
			return median(v), len(v)
		})
	}
	host("DisableNetwork 0 → Bootstrapped 100%, median", "s", "", func(h hostingResult) float64 { return h.boot.Seconds() })
	host("DisableNetwork 0 → first descriptor on an HSDir (HS_DESC UPLOADED), median", "s", "≤ 1.0",
		func(h hostingResult) float64 { return h.published.Seconds() })
	host("DisableNetwork 0 → every first-round upload answered, median", "s", "", func(h hostingResult) float64 { return h.allUploaded.Seconds() })
	for _, c := range kinds {
		host(fmt.Sprintf("cold connect by the %v client, 50 KiB, time to first byte, median", c), "ms", "≤ 1.0",
			func(h hostingResult) float64 { return h.cold[c].Seconds() * 1000 })
		host(fmt.Sprintf("%d MiB by the %v client, throughput, median", hostBulkSize>>20, c), "MiB/s", "≥ 1.0",
			func(h hostingResult) float64 { return h.mibps[c] })
	}
	bulkRows := func(label string, res [2][]bulkResult) {
		both(label+", throughput", "MiB/s", "≥ 1.0", func(k clientKind) (float64, int) {
			var v []float64
			for _, b := range res[k] {
				v = append(v, b.mibps)
			}
			return median(v), len(v)
		})
		both(label+", client CPU per MiB", "ms", "≤ 1.0", func(k clientKind) (float64, int) {
			var v []float64
			for _, b := range res[k] {
				v = append(v, b.cpuPerMiB*1000)
			}
			return median(v), len(v)
		})
		both(label+", of which system (kernel) time", "ms", "", func(k clientKind) (float64, int) {
			var v []float64
			for _, b := range res[k] {
				v = append(v, b.sysPerMiB*1000)
			}
			return median(v), len(v)
		})
	}
	bulkRows(fmt.Sprintf("bulk 1×%d MiB", r.opts.bulkMiB), r.bulk1)
	bulkRows(fmt.Sprintf("bulk %d×%d MiB in parallel", r.opts.parN, r.opts.parMiB), r.bulkPar)
	both("bootstrap, empty DataDirectory, median", "s", "", func(k clientKind) (float64, int) {
		return median(secs(r.bootCold[k])), len(r.bootCold[k])
	})
	both("bootstrap, restart from cache, median", "s", "", func(k clientKind) (float64, int) {
		return median(secs(r.bootWarm[k])), len(r.bootWarm[k])
	})
	mib := func(v [2]int) func(k clientKind) (float64, int) {
		return func(k clientKind) (float64, int) { return float64(v[k]) / 1024, 1 }
	}
	both("RSS idle, 10 s after bootstrap", "MiB", "≤ 1.0", mib(r.rssIdle))
	both("RSS idle, after the bulk downloads", "MiB", "", mib(r.rssAfter))
	both(fmt.Sprintf("RSS with %d open streams", r.opts.streams), "MiB", "≤ 1.5", mib(r.rssStreams))
	both(fmt.Sprintf("streams open (of %d)", r.opts.streams), "", "", func(k clientKind) (float64, int) {
		return float64(r.streamsOpen[k]), 1
	})
	both("streams still open at the exit 10 s after the application closed them", "", "", func(k clientKind) (float64, int) {
		return float64(r.streamsLeft[k]), 1
	})
	both("RSS 10 s after the application closed them", "MiB", "", mib(r.rssStreamsClosed))
	both(fmt.Sprintf("time to open %d streams (50 at a time)", r.opts.streams), "s", "", func(k clientKind) (float64, int) {
		return r.streamsOpenTime[k].Seconds(), 1
	})
	return rows
}

func fmtVal(v float64) string {
	switch {
	case math.IsNaN(v):
		return "—"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func fmtRatio(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "—"
	}
	return fmt.Sprintf("%.2f", v)
}

func (r *results) header() string {
	mode := "full run"
	if r.opts.quick {
		mode = "-quick run"
	}
	if r.opts.latency > 0 {
		mode += fmt.Sprintf(", %v one-way per ORPort link", r.opts.latency)
	}
	if r.opts.bridge != "" {
		mode += ", both clients through one " + r.opts.bridge + " bridge"
	}
	if r.opts.pinPath {
		mode += ", path pinned (relay0, relay1, exit0)"
	}
	if r.opts.phases != "" {
		mode += ", phases " + r.opts.phases
	}
	return fmt.Sprintf("%s: %s; %s; gotor %s, built with %s; network ready after %v; whole run %v; failed transfers: gotor %d, C tor %d",
		mode, r.machine, r.torVersion, r.gotorRev, r.goVersion, r.netReady.Round(time.Second), r.elapsed.Round(time.Second), r.errors[kindGotor], r.errors[kindCTor])
}

// hostingNote explains the hosting rows under the table.
const hostingNote = "hosting rows: the gotor and C tor columns are the process hosting the onion service " +
	"(a fresh one per repetition, started with DisableNetwork 1, timed from SETCONF DisableNetwork=0); " +
	"the client that fetches is the one the row names, the same process for both services."

func (r *results) text() string {
	var sb strings.Builder
	sb.WriteString(r.header() + "\n\n")
	fmt.Fprintf(&sb, "%-66s %10s %10s %8s  %s\n", "measurement", "gotor", "C tor", "ratio", "target")
	for _, rw := range r.rows() {
		name := rw.name
		if rw.unit != "" {
			name += " (" + rw.unit + ")"
		}
		t := ""
		if rw.target != "" {
			t = rw.target + " " + rw.verdict()
		}
		fmt.Fprintf(&sb, "%-66s %10s %10s %8s  %s\n", name, fmtVal(rw.v[0]), fmtVal(rw.v[1]), fmtRatio(rw.ratio()), t)
	}
	if len(r.hosting[kindGotor])+len(r.hosting[kindCTor]) > 0 {
		sb.WriteString("\n" + hostingNote + "\n")
	}
	if r.metricsBuildCount > 0 {
		fmt.Fprintf(&sb, "\ngotor MetricsPort gotor_circuit_build_seconds: %d builds, mean %.1f ms\n",
			int(r.metricsBuildCount), r.metricsBuildSum/r.metricsBuildCount*1000)
	}
	return sb.String()
}

func (r *results) markdown() string {
	var sb strings.Builder
	sb.WriteString(r.header() + ".\n\n")
	sb.WriteString("| measurement | gotor | C tor | gotor / C tor | target |\n|---|---|---|---|---|\n")
	for _, rw := range r.rows() {
		name := rw.name
		if rw.unit != "" {
			name += " (" + rw.unit + ")"
		}
		if rw.n[0] > 1 || rw.n[1] > 1 {
			name += fmt.Sprintf(" [n = %d / %d]", rw.n[0], rw.n[1])
		}
		t := ""
		if rw.target != "" {
			t = rw.target + " " + rw.verdict()
			if rw.verdict() == "missed" {
				t = "**" + t + "**"
			}
		}
		fmt.Fprintf(&sb, "| %s | %s | %s | %s | %s |\n", name, fmtVal(rw.v[0]), fmtVal(rw.v[1]), fmtRatio(rw.ratio()), t)
	}
	if len(r.hosting[kindGotor])+len(r.hosting[kindCTor]) > 0 {
		sb.WriteString("\n" + hostingNote + "\n")
	}
	if r.metricsBuildCount > 0 {
		fmt.Fprintf(&sb, "\ngotor's MetricsPort (`gotor_circuit_build_seconds`) over the whole run: %d builds, mean %.1f ms.\n",
			int(r.metricsBuildCount), r.metricsBuildSum/r.metricsBuildCount*1000)
	}
	return sb.String()
}

// csv lists every transfer: client, size, and times in milliseconds.
func (r *results) csv() string {
	var sb strings.Builder
	sb.WriteString("client,bytes,connect_ms,ttfb_ms,ttlb_ms\n")
	for _, k := range kinds {
		for _, size := range transferSizes {
			for _, t := range r.tr[k][size] {
				fmt.Fprintf(&sb, "%s,%d,%.3f,%.3f,%.3f\n", strings.ReplaceAll(k.String(), " ", ""), size,
					t.connect.Seconds()*1000, t.ttfb.Seconds()*1000, t.ttlb.Seconds()*1000)
			}
		}
	}
	return sb.String()
}

// readCSV loads transfers written by csv (for -replot).
func (r *results) readCSV(text string) error {
	for _, k := range kinds {
		r.tr[k] = map[int64][]transfer{}
	}
	for i, l := range strings.Split(strings.TrimSpace(text), "\n") {
		if i == 0 {
			continue
		}
		f := strings.Split(l, ",")
		if len(f) != 5 {
			return fmt.Errorf("line %d: %q", i+1, l)
		}
		k := kindGotor
		if f[0] != "gotor" {
			k = kindCTor
		}
		size, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return err
		}
		var v [3]time.Duration
		for j := range v {
			ms, err := strconv.ParseFloat(f[2+j], 64)
			if err != nil {
				return err
			}
			v[j] = time.Duration(ms * float64(time.Millisecond))
		}
		r.tr[k][size] = append(r.tr[k][size], transfer{connect: v[0], ttfb: v[1], ttlb: v[2]})
	}
	r.opts.reps = len(r.tr[kindGotor][transferSizes[0]])
	return nil
}

// gotorBuildHistogram reads the sum and count of gotor's
// gotor_circuit_build_seconds histogram from its MetricsPort.
func gotorBuildHistogram(addr string) (sum, count float64, err error) {
	if addr == "" {
		return 0, 0, fmt.Errorf("no MetricsPort")
	}
	cl := http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		v, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "gotor_circuit_build_seconds_sum":
			sum = v
		case "gotor_circuit_build_seconds_count":
			count = v
		}
	}
	return sum, count, sc.Err()
}

// svg draws the empirical CDFs of time to first byte (top row) and time
// to last byte (bottom row) per file size, both clients in each panel, as
// Tor Metrics shows OnionPerf results.
func (r *results) svg() string {
	const (
		pw, ph = 330, 230 // panel
		ml, mr = 50, 15   // margins inside a panel
		mt, mb = 28, 40
		top    = 40
	)
	cols := len(transferSizes)
	W, H := cols*pw+20, top+2*ph+40
	colors := [2]string{"#1f77b4", "#ff7f0e"}
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n", W, H, W, H)
	fmt.Fprintf(&sb, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&sb, `<text x="%d" y="22" font-size="14" text-anchor="middle">Time to first / last byte, private network (fresh SOCKS connection per transfer, n = %d per size and client; x axis cut at p98)</text>`+"\n", W/2, r.opts.reps)
	for row, what := range []string{"time to first byte", "time to last byte"} {
		for col, size := range transferSizes {
			x0, y0 := 10+col*pw, top+row*ph
			px0, py0 := float64(x0+ml), float64(y0+mt)
			pwi, phi := float64(pw-ml-mr), float64(ph-mt-mb)
			var data [2][]float64
			maxV := 0.0
			for _, k := range kinds {
				for _, t := range r.tr[k][size] {
					v := t.ttfb.Seconds()
					if row == 1 {
						v = t.ttlb.Seconds()
					}
					data[k] = append(data[k], v)
				}
				data[k] = sorted(data[k])
				if len(data[k]) > 0 {
					// The axis ends at the larger p98 so that a few outliers
					// do not squeeze the curves; the rest is drawn at the edge.
					maxV = math.Max(maxV, quantile(data[k], 0.98))
				}
			}
			if maxV == 0 {
				maxV = 1
			}
			step := niceStep(maxV / 5)
			xmax := math.Ceil(maxV/step) * step
			fmt.Fprintf(&sb, `<text x="%.0f" y="%d" text-anchor="middle" font-size="12">%s, %s</text>`+"\n", px0+pwi/2, y0+mt-10, sizeName(size), what)
			fmt.Fprintf(&sb, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#888"/>`+"\n", px0, py0, pwi, phi)
			for i := 0; ; i++ {
				v := float64(i) * step
				if v > xmax+step/1e6 {
					break
				}
				x := px0 + v/xmax*pwi
				fmt.Fprintf(&sb, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", x, py0, x, py0+phi)
				fmt.Fprintf(&sb, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x, py0+phi+14, strconv.FormatFloat(v, 'g', 6, 64))
			}
			for i := 0; i <= 4; i++ {
				y := py0 + phi - float64(i)/4*phi
				fmt.Fprintf(&sb, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", px0, y, px0+pwi, y)
				fmt.Fprintf(&sb, `<text x="%.1f" y="%.1f" text-anchor="end">%.2g</text>`+"\n", px0-4, y+4, float64(i)/4)
			}
			fmt.Fprintf(&sb, `<text x="%.0f" y="%.0f" text-anchor="middle">seconds</text>`+"\n", px0+pwi/2, py0+phi+30)
			for _, k := range kinds {
				d := data[k]
				if len(d) == 0 {
					continue
				}
				var pts []string
				prevY := py0 + phi
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", px0, prevY))
				for i, v := range d {
					x := px0 + math.Min(v/xmax, 1)*pwi
					y := py0 + phi - float64(i+1)/float64(len(d))*phi
					pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, prevY), fmt.Sprintf("%.1f,%.1f", x, y))
					prevY = y
				}
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", px0+pwi, prevY))
				fmt.Fprintf(&sb, `<polyline fill="none" stroke="%s" stroke-width="1.8" points="%s"/>`+"\n", colors[k], strings.Join(pts, " "))
			}
		}
	}
	ly := H - 14
	for i, k := range kinds {
		x := W/2 - 120 + i*140
		fmt.Fprintf(&sb, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"/>`+"\n", x, ly-4, x+30, ly-4, colors[k])
		fmt.Fprintf(&sb, `<text x="%d" y="%d">%s</text>`+"\n", x+36, ly, k)
	}
	sb.WriteString("</svg>\n")
	return sb.String()
}

// niceStep rounds s up to 1, 2 or 5 times a power of ten.
func niceStep(s float64) float64 {
	if s <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(s)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= s {
			return m * p
		}
	}
	return 10 * p
}
