// Command gotor is a Tor client written in pure Go. It reads the same
// torrc and command line as C tor's client:
//
//	gotor                       # zero-config: SocksPort 127.0.0.1:9050, the real network
//	gotor -f /path/to/torrc     # a torrc, as C tor reads it
//	gotor --SocksPort 9150 --MaxCircuitDirtiness "5 minutes"
//	gotor --verify-config -f torrc
//	gotor --hash-password PASSWORD
//
// The command line is C tor's (cmdline.go). SIGINT and SIGTERM shut down
// cleanly; SIGHUP re-reads the configuration and applies it (as a
// controller's SIGNAL RELOAD).
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/gotor/gotor/config"
	"github.com/gotor/gotor/internal/dirmgr"
	"github.com/gotor/gotor/internal/engine"
	"github.com/gotor/gotor/internal/logging"
)

func main() {
	// A launcher may close gotor's standard output once it has seen
	// "Bootstrapped 100%" (stem does): later log lines must then fail
	// quietly, not kill gotor with SIGPIPE. C tor ignores SIGPIPE too.
	signal.Ignore(syscall.SIGPIPE)
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	inv, cfg, h, code, done := startup(args, stdin, stdout, stderr) // cmdline.go
	if done {
		return code
	}
	defer h.Close()
	log := slog.New(h)

	c, err := engine.New(cfg, log)
	if err != nil {
		log.Error(err.Error())
		return 1
	}

	// SIGHUP, SIGNAL RELOAD and LOADCONF read the configuration from the
	// command line's sources again; SAVECONF writes the -f torrc; Log
	// lines changed at run time go through the swappable handler.
	c.SetConfigSource(engine.ConfigSource{
		File: inv.configFile,
		Load: inv.load,
		LoadText: func(text string) (*config.Config, []config.Warning, error) {
			return config.LoadString(text, "LOADCONF", inv.args)
		},
	})
	c.SetLogHook(func(cfg *config.Config) error {
		nh, closeFn, err := inv.openLogs(cfg)
		if err != nil {
			return err
		}
		h.Swap(nh, closeFn)
		return nil
	})

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
		case <-c.Shutdown():
			log.Log(context.Background(), logging.LevelNotice, "Controller asked to shut down")
			cancel()
			c.Stop()
			return 0
		case s := <-sigs:
			switch s {
			case syscall.SIGHUP:
				c.ReloadTorrc() // as SIGNAL RELOAD
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
