// Command per-app-isolation shows per-application isolation in one Go
// program (the design's example 3): each "application" dials with its own
// isolation token, so their streams never share a circuit, while one
// application's streams do share one.
//
//	go run ./examples/per-app-isolation -f torrc http://127.0.0.1:8080/
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"time"

	"github.com/gotor/gotor/client"
	"github.com/gotor/gotor/config"
)

func main() {
	torrc := flag.String("f", "", "torrc to read (default: built-in zero-config)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: per-app-isolation [-f torrc] URL")
		os.Exit(2)
	}
	u, err := url.Parse(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}

	cfg := config.DefaultConfig()
	if *torrc != "" {
		if cfg, _, err = config.Load(*torrc, nil); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	cfg.IsolationLevel = "session"
	cfg.SocksPorts = nil
	c, err := client.New(cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
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

	circuitFor := func(app string, tok client.IsolationToken) uint64 {
		conn, err := c.DialContext(client.WithIsolationToken(ctx, tok), "tcp", host)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", app, err)
			os.Exit(1)
		}
		defer conn.Close()
		s, _ := c.StreamOf(conn)
		fmt.Printf("%-8s stream %d on circuit %d\n", app, s.ID, s.CircuitID)
		return s.CircuitID
	}
	mail, chat := client.NewIsolationToken(), client.NewIsolationToken()
	m1 := circuitFor("mail", mail)
	m2 := circuitFor("mail", mail)
	ch := circuitFor("chat", chat)
	if m1 == ch {
		fmt.Println("FAIL: mail and chat share a circuit")
		os.Exit(1)
	}
	if m1 != m2 {
		fmt.Println("note: mail's two streams used two circuits")
	}
	fmt.Println("OK: mail and chat use different circuits")
}
