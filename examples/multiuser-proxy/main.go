// Command multiuser-proxy runs gotor as a SOCKS proxy shared by several
// users, each isolated by SOCKS credentials (the design's example 2):
// alice's and bob's streams never share a circuit.
//
//	go run ./examples/multiuser-proxy -listen 127.0.0.1:9050
//	curl --socks5-hostname alice:pass@127.0.0.1:9050 https://example.com
//	curl --socks5-hostname bob:pass@127.0.0.1:9050 https://example.com
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gotor/gotor/client"
	"github.com/gotor/gotor/config"
)

func main() {
	torrc := flag.String("f", "", "torrc to read (default: built-in zero-config)")
	listen := flag.String("listen", "127.0.0.1:9050", "SOCKS listen address")
	flag.Parse()

	cfg := config.DefaultConfig()
	if *torrc != "" {
		var err error
		if cfg, _, err = config.Load(*torrc, nil); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	cfg.IsolationLevel = "credential"
	cfg.IsolateSOCKSAuth = true
	cfg.EnableCircuitPrebuilding = true
	cfg.SocksPorts = []config.PortConfig{config.DefaultPort(*listen)}

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := client.New(cfg, logger)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("multi-user SOCKS proxy on %s (isolated by username/password)\n", c.SocksAddrs()[0])

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	c.Stop()
}
