// Command onion-server is an HTTP server reachable only as a .onion: it
// embeds gotor, publishes an onion service with client.ListenOnion
// (rend-spec-v3) and serves HTTP on the listener. It opens no TCP port
// of its own; clients reach it through Tor.
//
//	go run ./examples/onion-server                        # the real Tor network, a new address
//	go run ./examples/onion-server -hs-dir ./hs            # keep the address (a C tor HiddenServiceDir)
//	go run ./examples/onion-server -f torrc -root ./www    # a torrc (e.g. a private network), files from ./www
//
// Once the descriptor is on the HSDirs it prints
// "serving http://<56 base32>.onion/" and serves until interrupted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gotor/gotor/client"
	"github.com/gotor/gotor/config"
)

func main() {
	torrc := flag.String("f", "", "torrc to read (default: built-in zero-config)")
	hsDir := flag.String("hs-dir", "", "HiddenServiceDir keeping the service's key (default: a new address each run)")
	root := flag.String("root", "", "directory to serve (default: a greeting page)")
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: onion-server [-f torrc] [-hs-dir DIR] [-root DIR]")
		os.Exit(2)
	}
	if err := run(*torrc, *hsDir, *root); err != nil {
		fmt.Fprintln(os.Stderr, "onion-server:", err)
		os.Exit(1)
	}
}

func run(torrc, hsDir, root string) error {
	cfg := config.DefaultConfig()
	if torrc != "" {
		var err error
		if cfg, _, err = config.Load(torrc, nil); err != nil {
			return err
		}
	}
	cfg.SocksPorts = nil // a server: no SOCKS listener
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	startCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	c, err := client.Open(startCtx, cfg, logger) // returns once bootstrapped
	if err != nil {
		return err
	}
	defer c.Stop()

	// Port 80 of the .onion; WaitPublished returns once clients can
	// find the service.
	ln, err := c.ListenOnion(startCtx, client.OnionConfig{Dir: hsDir, Ports: []uint16{80}, WaitPublished: true})
	if err != nil {
		return err
	}
	defer ln.Close()

	var h http.Handler = http.FileServer(http.Dir(root))
	if root == "" {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "Hello from %s, served by gotor.\n", ln.Hostname())
		})
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shut)
	}()
	fmt.Printf("serving http://%s/\n", ln.Hostname())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
