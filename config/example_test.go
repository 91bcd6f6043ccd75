package config_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/gotor/gotor/config"
)

func Example() {
	// Zero configuration: SOCKS on 127.0.0.1:9050, the real network.
	cfg := config.DefaultConfig()
	fmt.Println(cfg.SocksPorts[0].Addr, cfg.MaxCircuitDirtiness, len(cfg.DirAuthorities))

	// Per-destination isolation, as in the isolation design.
	cfg.IsolationLevel = "destination"
	cfg.IsolateDestinations = true
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	p := cfg.Port(cfg.SocksPorts[0])
	fmt.Println(p.IsolateDestAddr, p.IsolateDestPort, p.IsolateSOCKSAuth)

	// A torrc written for C tor, with a command-line override.
	dir, _ := os.MkdirTemp("", "gotor-example")
	defer os.RemoveAll(dir)
	torrc := filepath.Join(dir, "torrc")
	os.WriteFile(torrc, []byte(`
DataDirectory `+dir+`
SocksPort 9150 IsolateDestAddr
MaxCircuitDirtiness 5 minutes
AvoidDiskWrites 1
`), 0o600)
	cfg, warnings, err := config.Load(torrc, []string{"--SafeSocks", "1"})
	if err != nil {
		panic(err)
	}
	fmt.Println(cfg.SocksPorts[0].Addr, cfg.SocksPorts[0].IsolateDestAddr, cfg.MaxCircuitDirtiness, cfg.SafeSocks)
	for _, w := range warnings {
		fmt.Println("warning:", w.Option, w.Msg)
	}
	// Output:
	// 127.0.0.1:9050 10m0s 0
	// true true true
	// 127.0.0.1:9150 true 5m0s true
	// warning: AvoidDiskWrites not supported by gotor, ignored (not configurable in gotor)
}
