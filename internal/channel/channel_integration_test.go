package channel

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/testnet"
)

func TestMain(m *testing.M) { testnet.Main(m) }

func nodeIdentity(t *testing.T, n testnet.NodeInfo) (netip.AddrPort, Identity) {
	t.Helper()
	var id Identity
	b, err := hex.DecodeString(n.Fingerprint)
	if err != nil || len(b) != 20 {
		t.Fatalf("fingerprint %q: %v", n.Fingerprint, err)
	}
	copy(id.RSAID[:], b)
	e, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(n.Ed25519, "="))
	if err != nil || len(e) != 32 {
		t.Fatalf("ed25519 %q: %v", n.Ed25519, err)
	}
	copy(id.Ed25519ID[:], e)
	id.HasEd25519 = true
	return netip.MustParseAddrPort(n.ORAddr()), id
}

func TestHandshakeEveryRelay(t *testing.T) {
	net := testnet.Shared(t)
	for _, n := range net.Relays() {
		addr, id := nodeIdentity(t, n)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		ch, err := Dial(ctx, addr, id)
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", n.Nickname, err)
		}
		if ch.Peer() != id {
			t.Fatalf("%s: peer %v want %v", n.Nickname, ch.Peer(), id)
		}
		t.Logf("%s: link protocol %d, identity %v", n.Nickname, ch.LinkProtocol(), ch.Peer())
		ch.Close()
		<-ch.Done()
	}
}

func TestHandshakeWrongIdentity(t *testing.T) {
	net := testnet.Shared(t)
	n := net.Relays()[0]
	addr, id := nodeIdentity(t, n)
	for _, tc := range []struct {
		kind   string
		mutate func(*Identity)
	}{
		{"RSA", func(i *Identity) { i.RSAID[0] ^= 0xff }},
		{"Ed25519", func(i *Identity) { i.Ed25519ID[0] ^= 0xff }},
	} {
		bad := id
		tc.mutate(&bad)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, err := Dial(ctx, addr, bad)
		cancel()
		var mm *IdentityMismatchError
		if !errors.As(err, &mm) || mm.Kind != tc.kind {
			t.Fatalf("%s: got %v", tc.kind, err)
		}
		if !strings.Contains(err.Error(), "expected") || !strings.Contains(err.Error(), "got") {
			t.Fatalf("error does not name expected vs got: %v", err)
		}
		t.Logf("%v", err)
	}
}

func TestManagerReuse(t *testing.T) {
	net := testnet.Shared(t)
	n := net.Relays()[0]
	addr, id := nodeIdentity(t, n)
	m := NewManager()
	defer m.Close()
	ctx := context.Background()
	a, err := m.Get(ctx, addr, id)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Get(ctx, addr, id)
	if err != nil || a != b {
		t.Fatalf("not reused: %v", err)
	}
	a.Close()
	c, err := m.Get(ctx, addr, id)
	if err != nil || c == a {
		t.Fatalf("closed channel reused: %v", err)
	}
}
