// Command gotor is a Tor client written in pure Go. It reads the same
// torrc and command line as C tor's client:
//
//	gotor                       # zero-config: SocksPort 127.0.0.1:9050, the real network
//	gotor -f /path/to/torrc     # a torrc, as C tor reads it
//	gotor --SocksPort 9150 --MaxCircuitDirtiness "5 minutes"
//	gotor --verify-config -f torrc
//
// SIGINT and SIGTERM shut down cleanly; SIGHUP re-reads the configuration.
package main

import (
	"context"

	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"syscall"
	"time"

	"github.com/gotor/gotor/config"
	"github.com/gotor/gotor/internal/dirmgr"
	"github.com/gotor/gotor/internal/engine"
	"github.com/gotor/gotor/internal/logging"
	"github.com/gotor/gotor/internal/torrc"
)

var version = "0.1.0-dev"

const usage = `Usage: gotor [-f FILE] [--defaults-torrc FILE] [--Option value ...]

gotor is a Tor client written in Go. It reads C tor's torrc syntax and
option names (see docs/TORRC.md).

  -f FILE              read the configuration from FILE
  --defaults-torrc F   read defaults from F
  --verify-config      check the configuration and exit
  --version            print the version and exit
  -h, --help           print this help and exit
  --Option value       set a torrc option (overrides the file)

Without -f, gotor runs with built-in defaults: SocksPort 127.0.0.1:9050,
the DataDirectory in the user's cache directory, the Tor network's
directory authorities.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cl, err := torrc.ParseCommandLine(args)
	if err != nil {
		fmt.Fprintf(stderr, "gotor: %v\n", err)
		return 2
	}
	switch {
	case cl.Has("--help") || cl.Has("-h"):
		fmt.Fprint(stdout, usage)
		return 0
	case cl.Has("--version"):
		fmt.Fprintf(stdout, "gotor %s (a Tor client in Go)\n", version)
		return 0
	}
	cfg, warnings, err := config.Load("", args)
	if err != nil {
		fmt.Fprintf(stderr, "gotor: configuration: %v\n", err)
		return 1
	}
	for _, w := range warnings {
		fmt.Fprintf(stderr, "gotor: warning: %s\n", w)
	}
	if cl.Has("--verify-config") {
		fmt.Fprintln(stdout, "Configuration was valid")
		return 0
	}

	// As C tor does, the DataDirectory exists before logs are opened, so
	// "Log notice file DATADIR/notice.log" works on a first start.
	if cfg.DataDirectory != "" {
		if err := os.MkdirAll(cfg.DataDirectory, 0o700); err != nil {
			fmt.Fprintf(stderr, "gotor: DataDirectory: %v\n", err)
			return 1
		}
	}
	first, closeLogs, err := logging.New(cfg.Logs)
	if err != nil {
		fmt.Fprintf(stderr, "gotor: %v\n", err)
		return 1
	}
	h := logging.NewSwappable(first, closeLogs)
	defer h.Close()
	log := slog.New(h)
	log.Log(context.Background(), logging.LevelNotice, fmt.Sprintf("gotor %s starting", version))

	c, err := engine.New(cfg, log)
	if err != nil {
		log.Error(err.Error())
		return 1
	}

	c.SetConfigFile(cl.ConfigFile())

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bar := newProgressBar(stderr, logsToStderr(cfg.Logs))
	progress := c.ProgressEvents()
	go func() {
		for p := range progress {
			bar.update(p)
		}
	}()

	started := make(chan error, 1)
	go func() { started <- c.Start(ctx) }()
	for {
		select {
		case err := <-started:
			if err != nil {
				log.Error("bootstrap failed", "err", err)
				c.Stop()
				return 1
			}
			bar.done()
			started = nil
		case <-c.Reload():
			reload(log, h, args, cfg)
		case <-c.Shutdown():
			log.Log(context.Background(), logging.LevelNotice, "Controller asked to shut down")
			cancel()
			c.Stop()
			return 0
		case s := <-sigs:
			switch s {
			case syscall.SIGHUP:
				reload(log, h, args, cfg)
			default:
				log.Log(context.Background(), logging.LevelNotice, fmt.Sprintf("Caught %v, shutting down cleanly", s))
				cancel()
				c.Stop()
				log.Log(context.Background(), logging.LevelNotice, "Shutdown complete")
				return 0
			}
		}
	}
}

// reload re-reads the configuration on SIGHUP. gotor cannot yet change a
// running client's options, so it validates the new configuration and
// names the options that changed and need a restart.
func reload(log *slog.Logger, h *logging.Swappable, args []string, old *config.Config) {
	cfg, _, err := config.Load("", args)
	if err != nil {
		log.Warn("SIGHUP: configuration not reloaded", "err", err)
		return
	}
	// Log lines take effect at once (files are reopened, which also
	// serves log rotation).
	if nh, closeFn, err := logging.New(cfg.Logs); err != nil {
		log.Warn("SIGHUP: Log lines not applied", "err", err)
	} else {
		h.Swap(nh, closeFn)
		old.Logs = cfg.Logs
	}
	// Everything else is fixed once the client runs: name what changed.
	var changed []string
	nv, ov := reflect.ValueOf(cfg).Elem(), reflect.ValueOf(old).Elem()
	for i := 0; i < nv.NumField(); i++ {
		name := nv.Type().Field(i).Name
		if name != "Logs" && !reflect.DeepEqual(nv.Field(i).Interface(), ov.Field(i).Interface()) {
			changed = append(changed, name)
		}
	}
	if len(changed) == 0 {
		log.Log(context.Background(), logging.LevelNotice, "SIGHUP: configuration re-read; nothing changed")
		return
	}
	log.Warn("SIGHUP: these options changed and take effect only after a restart: " + strings.Join(changed, ", "))
}

func logsToStderr(logs []config.LogConfig) bool {
	for _, l := range logs {
		if l.Dest == "stderr" {
			return true
		}
	}
	return false
}

// progressBar draws bootstrap progress on a terminal; elsewhere the log
// lines ("Bootstrapped N% ...") are the report.
type progressBar struct {
	w       io.Writer
	enabled bool
	last    time.Time
}

func newProgressBar(w io.Writer, logsThere bool) *progressBar {
	f, ok := w.(*os.File)
	tty := false
	if ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &progressBar{w: w, enabled: tty && !logsThere}
}

func (b *progressBar) update(p dirmgr.Progress) {
	if !b.enabled {
		return
	}
	const width = 30
	n := p.Percent * width / 100
	fmt.Fprintf(b.w, "\r[%s%s] %3d%% %-50.50s", strings.Repeat("=", n), strings.Repeat(" ", width-n), p.Percent, p.Summary)
}

func (b *progressBar) done() {
	if b.enabled {
		fmt.Fprintln(b.w)
	}
}
