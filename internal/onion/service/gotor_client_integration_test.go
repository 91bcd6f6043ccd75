package service

// A gotor onion client (internal/onion) reaches a gotor service, both on
// real circuits of the private network.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/cell"
	"github.com/gotor/gotor/internal/circuit"
	"github.com/gotor/gotor/internal/onion"
	"github.com/gotor/gotor/internal/onion/hscell"
	"github.com/gotor/gotor/internal/onion/hscrypto"
	"github.com/gotor/gotor/internal/stream"
	"github.com/gotor/gotor/internal/testnet"
)

// clientBuilder adapts testNetwork to the onion client's CircuitBuilder.
type clientBuilder struct{ n *testNetwork }

func (b clientBuilder) BuildCircuit(ctx context.Context, last onion.Target, _ onion.Purpose) (onion.Circ, error) {
	req := CircuitRequest{Hops: ServiceCircuitHops, Relay: last.Relay}
	if last.Relay != nil {
		req.Last = circuit.TargetFromRelay(last.Relay)
	}
	if len(last.LinkSpecs) > 0 {
		s := hscell.Summarize(last.LinkSpecs)
		if !s.HasRSA || !s.IPv4.IsValid() {
			return nil, errors.New("intro point without RSA id or IPv4")
		}
		req.Last = circuit.Target{RSAID: s.RSAID, Ed25519ID: s.Ed25519, HasEd25519: s.HasEd, Addr: s.IPv4, NtorKey: last.NtorKey}
		for _, l := range last.LinkSpecs {
			req.LinkSpecs = append(req.LinkSpecs, cell.LinkSpec{Type: l.Type, Data: l.Data})
		}
	}
	c, err := b.n.BuildCircuit(ctx, req)
	if err != nil {
		return nil, err
	}
	return clientCirc{c}, nil
}

type clientCirc struct{ *circuit.Circuit }

func (c clientCirc) SendRelay(ctx context.Context, cmd byte, body []byte) error {
	return c.Circuit.SendRelay(ctx, cell.RelayMsg{Command: cell.RelayCommand(cmd), Data: body})
}

func (c clientCirc) ReceiveRelay(ctx context.Context) (byte, []byte, error) {
	m, err := c.Circuit.ReceiveControl(ctx)
	return byte(m.Command), m.Data, err
}

func (c clientCirc) BeginDir(ctx context.Context) (net.Conn, error) {
	return stream.BeginDir(ctx, c.Circuit)
}

func (c clientCirc) ExtendVirtualHop(keys hscrypto.RendKeys) error {
	return c.Circuit.ExtendVirtual(hscrypto.NewRendHop(keys))
}

func (c clientCirc) OpenStream(ctx context.Context, port uint16) (net.Conn, error) {
	return stream.Begin(ctx, c.Circuit, "", port, 0)
}

func (c clientCirc) Close() error { return c.Circuit.Close() }

// TestIntegrationGotorClientToGotorService: the onion client of
// internal/onion connects to a service of this package and echoes data
// both ways, then 200 streams at once go over its rendezvous circuit.
func TestIntegrationGotorClientToGotorService(t *testing.T) {
	n := testnet.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	tn := newTestNetwork(t, ctx, n)
	id, _ := GenerateIdentity(nil)
	s := startService(t, ctx, tn, Config{Identity: id, Ports: []Port{{Virtual: 7}}})
	go func() {
		for {
			c, err := s.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	oc := onion.New(onion.Config{Builder: clientBuilder{tn}, NetDir: tn.NetDir, TestingNetwork: true,
		HSDirTimeout: 20 * time.Second, IntroTimeout: 20 * time.Second, RendezvousTimeout: 30 * time.Second})
	defer oc.Close()
	var conn net.Conn
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if conn, err = oc.Dial(ctx, s.Hostname(), 7); err == nil {
			break
		}
		t.Logf("dial attempt %d: %v", attempt, err)
		time.Sleep(3 * time.Second)
	}
	if err != nil {
		t.Fatal(err)
	}
	msg := make([]byte, 256<<10)
	for i := range msg {
		msg[i] = byte(i * 7)
	}
	go conn.Write(msg)
	got := make([]byte, len(msg))
	conn.SetDeadline(time.Now().Add(time.Minute))
	if _, err := io.ReadFull(conn, got); err != nil || string(got) != string(msg) {
		t.Fatalf("echo of %d bytes: %v", len(msg), err)
	}
	conn.Close()
	t.Logf("gotor client: %d bytes echoed through a gotor service", len(msg))

	// 200 concurrent streams on the same rendezvous circuit.
	const N = 200
	var wg sync.WaitGroup
	errs := make(chan error, N)
	start := time.Now()
	for i := range N {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := oc.Dial(ctx, s.Hostname(), 7)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(2 * time.Minute))
			line := fmt.Sprintf("stream %d\n", i)
			if _, err := io.WriteString(c, line); err != nil {
				errs <- err
				return
			}
			if echo, err := bufio.NewReader(c).ReadString('\n'); err != nil || echo != line {
				errs <- fmt.Errorf("stream %d: %q %v", i, echo, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		failed++
		if failed <= 3 {
			t.Error(err)
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d concurrent streams failed", failed, N)
	}
	t.Logf("%d concurrent streams echoed in %v; stats %+v", N, time.Since(start).Round(time.Millisecond), s.Stats())
}
