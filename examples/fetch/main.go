// Command fetch embeds gotor in a Go program and fetches one URL through
// Tor with the client's http.Client.
//
//	go run ./examples/fetch https://example.com/          # the real Tor network
//	go run ./examples/fetch -f torrc http://127.0.0.1:8080/   # a torrc (e.g. a private network)
package main

import (
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/gotor/gotor/client"
	"github.com/gotor/gotor/config"
)

func main() {
	torrc := flag.String("f", "", "torrc to read (default: built-in zero-config)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: fetch [-f torrc] URL")
		os.Exit(2)
	}
	cfg := config.DefaultConfig()
	if *torrc != "" {
		var err error
		if cfg, _, err = config.Load(*torrc, nil); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	cfg.SocksPorts = nil // this program needs no SOCKS listener
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
	defer c.Stop()

	resp, err := c.HTTPClient().Get(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("%s: %d bytes, sha256 %x\n", resp.Status, len(body), sha256.Sum256(body))
}
