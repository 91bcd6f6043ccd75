package main

import (
	"encoding/xml"
	"io"
	"math"
	"strings"
	"testing"
	"time"
)

func TestQuantiles(t *testing.T) {
	s := []float64{5, 1, 4, 2, 3}
	if m := median(s); m != 3 {
		t.Errorf("median = %v, want 3", m)
	}
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("median of 4 = %v, want 2.5", m)
	}
	if q := quantile(sorted(s), 0.9); q != 5 {
		t.Errorf("p90 = %v, want 5 (nearest rank)", q)
	}
	if !math.IsNaN(median(nil)) || !math.IsNaN(quantile(nil, 0.5)) {
		t.Error("empty input should give NaN")
	}
	for _, c := range []struct{ in, want float64 }{{0.03, 0.05}, {0.2, 0.2}, {0.21, 0.5}, {7, 10}} {
		if got := niceStep(c.in); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("niceStep(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func sampleResults() *results {
	r := &results{opts: options{reps: 3, streams: 1000, bulkMiB: 100, parN: 8, parMiB: 20}}
	for _, k := range kinds {
		r.tr[k] = map[int64][]transfer{}
		for _, size := range transferSizes {
			for i := 1; i <= 3; i++ {
				d := time.Duration(i) * time.Millisecond * time.Duration(1+int(k))
				r.tr[k][size] = append(r.tr[k][size], transfer{connect: d, ttfb: 2 * d, ttlb: 10 * d})
			}
		}
		r.bulk1[k] = []bulkResult{{mibps: 10, cpuPerMiB: 0.008}}
		r.rssIdle[k] = 1024 * (1 + int(k))
	}
	return r
}

func TestCSVRoundTrip(t *testing.T) {
	r := sampleResults()
	var back results
	if err := back.readCSV(r.csv()); err != nil {
		t.Fatal(err)
	}
	for _, k := range kinds {
		for _, size := range transferSizes {
			a, b := r.tr[k][size], back.tr[k][size]
			if len(a) != len(b) {
				t.Fatalf("%v %d: %d transfers back, want %d", k, size, len(b), len(a))
			}
			for i := range a {
				if a[i] != b[i] {
					t.Errorf("%v %d #%d: %+v, want %+v", k, size, i, b[i], a[i])
				}
			}
		}
	}
	if back.opts.reps != 3 {
		t.Errorf("reps = %d, want 3", back.opts.reps)
	}
}

func TestReportOutputs(t *testing.T) {
	r := sampleResults()
	md := r.markdown()
	if !strings.Contains(md, "| 50 KiB, time to first byte, median (ms) [n = 3 / 3] | 4.00 | 8.00 | 0.50 | ≤ 1.05 met |") {
		t.Errorf("markdown row missing:\n%s", md)
	}
	if !strings.Contains(md, "| RSS idle, 10 s after bootstrap (MiB) | 1.00 | 2.00 | 0.50 | ≤ 1.0 met |") {
		t.Errorf("RSS row missing:\n%s", md)
	}
	d := xml.NewDecoder(strings.NewReader(r.svg()))
	lines := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("svg is not well-formed: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "polyline" {
			lines++
		}
	}
	if want := 2 * 2 * len(transferSizes); lines != want {
		t.Errorf("%d CDF lines, want %d", lines, want)
	}
}
