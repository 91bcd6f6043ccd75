package channel

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"math/big"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/cell"
	"github.com/gotor/gotor/internal/torcrypto"
)

func edCert(certType, keyType uint8, certified []byte, signer ed25519.PrivateKey, exp time.Time) []byte {
	b := []byte{1, certType}
	b = binary.BigEndian.AppendUint32(b, uint32(exp.Unix()/3600))
	b = append(b, keyType)
	b = append(b, certified...)
	b = append(b, 1, 0, 32, torcrypto.ExtSignedWithEd25519Key, 0)
	b = append(b, signer.Public().(ed25519.PublicKey)...)
	return append(b, ed25519.Sign(signer, b)...)
}

func crossCert(ed []byte, k *rsa.PrivateKey, exp time.Time) []byte {
	b := append([]byte(nil), ed...)
	b = binary.BigEndian.AppendUint32(b, uint32(exp.Unix()/3600))
	h := sha256.Sum256(append([]byte("Tor TLS RSA/Ed25519 cross-certificate"), b...))
	sig, _ := rsa.SignPKCS1v15(nil, k, crypto.Hash(0), h[:])
	b = append(b, byte(len(sig)))
	return append(b, sig...)
}

func rsaCert(t *testing.T, k, signer *rsa.PrivateKey) []byte {
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "www.example.net"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

type certSet struct {
	rsaKey          *rsa.PrivateKey
	idPriv, sigPriv ed25519.PrivateKey
	leaf            []byte
	entries         map[uint8][]byte
}

func validCerts(t *testing.T) *certSet {
	s := &certSet{entries: map[uint8][]byte{}}
	var err error
	if s.rsaKey, err = rsa.GenerateKey(rand.Reader, 1024); err != nil {
		t.Fatal(err)
	}
	_, s.idPriv, _ = ed25519.GenerateKey(nil)
	_, s.sigPriv, _ = ed25519.GenerateKey(nil)
	s.leaf = []byte("the TLS certificate DER")
	leafHash := sha256.Sum256(s.leaf)
	exp := time.Now().Add(48 * time.Hour)
	s.entries[2] = rsaCert(t, s.rsaKey, s.rsaKey)
	s.entries[4] = edCert(4, 1, s.sigPriv.Public().(ed25519.PublicKey), s.idPriv, exp)
	s.entries[5] = edCert(5, 3, leafHash[:], s.sigPriv, exp)
	s.entries[7] = crossCert(s.idPriv.Public().(ed25519.PublicKey), s.rsaKey, exp)
	return s
}

func (s *certSet) list() []cell.CertEntry {
	var out []cell.CertEntry
	for _, typ := range []uint8{2, 4, 5, 7} {
		if b, ok := s.entries[typ]; ok {
			out = append(out, cell.CertEntry{Type: typ, Body: b})
		}
	}
	return out
}

func TestVerifyResponderCerts(t *testing.T) {
	s := validCerts(t)
	id, err := verifyResponderCerts(s.list(), s.leaf, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if id.RSAID != torcrypto.RSAIdentity(&s.rsaKey.PublicKey) || !id.HasEd25519 ||
		string(id.Ed25519ID[:]) != string(s.idPriv.Public().(ed25519.PublicKey)) {
		t.Fatalf("identity %v", id)
	}
	other, _ := rsa.GenerateKey(rand.Reader, 1024)
	_, otherEd, _ := ed25519.GenerateKey(nil)
	exp := time.Now().Add(48 * time.Hour)
	cases := map[string]func(s *certSet) ([]cell.CertEntry, []byte){
		"missing cross-cert": func(s *certSet) ([]cell.CertEntry, []byte) {
			delete(s.entries, 7)
			return s.list(), s.leaf
		},
		"duplicate type 4": func(s *certSet) ([]cell.CertEntry, []byte) {
			return append(s.list(), cell.CertEntry{Type: 4, Body: s.entries[4]}), s.leaf
		},
		"other TLS certificate": func(s *certSet) ([]cell.CertEntry, []byte) {
			return s.list(), []byte("another certificate")
		},
		"expired link cert": func(s *certSet) ([]cell.CertEntry, []byte) {
			h := sha256.Sum256(s.leaf)
			s.entries[5] = edCert(5, 3, h[:], s.sigPriv, time.Now().Add(-time.Hour))
			return s.list(), s.leaf
		},
		"link cert signed by identity instead of signing key": func(s *certSet) ([]cell.CertEntry, []byte) {
			h := sha256.Sum256(s.leaf)
			s.entries[5] = edCert(5, 3, h[:], s.idPriv, exp)
			return s.list(), s.leaf
		},
		"cross-cert for another Ed25519 key": func(s *certSet) ([]cell.CertEntry, []byte) {
			s.entries[7] = crossCert(otherEd.Public().(ed25519.PublicKey), s.rsaKey, exp)
			return s.list(), s.leaf
		},
		"cross-cert signed by another RSA key": func(s *certSet) ([]cell.CertEntry, []byte) {
			s.entries[7] = crossCert(s.idPriv.Public().(ed25519.PublicKey), other, exp)
			return s.list(), s.leaf
		},
		"RSA identity cert not self-signed": func(s *certSet) ([]cell.CertEntry, []byte) {
			s.entries[2] = rsaCert(t, s.rsaKey, other)
			return s.list(), s.leaf
		},
		"type 4 with wrong cert type": func(s *certSet) ([]cell.CertEntry, []byte) {
			s.entries[4] = edCert(6, 1, s.sigPriv.Public().(ed25519.PublicKey), s.idPriv, exp)
			return s.list(), s.leaf
		},
		"garbage type 4": func(s *certSet) ([]cell.CertEntry, []byte) {
			s.entries[4] = []byte{1, 2, 3}
			return s.list(), s.leaf
		},
	}
	for name, mutate := range cases {
		s := validCerts(t)
		list, leaf := mutate(s)
		_, err := verifyResponderCerts(list, leaf, time.Now())
		var ce *CertsError
		if !errors.As(err, &ce) {
			t.Errorf("%s: got %v, want *CertsError", name, err)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

// fakePeer returns a client channel over a pipe and the relay's end.
func fakePeer(t *testing.T) (*Channel, net.Conn) {
	a, b := net.Pipe()
	ch := NewFromConn(a, Identity{})
	t.Cleanup(func() { ch.Close(); b.Close() })
	return ch, b
}

func writeCell(t *testing.T, c net.Conn, id uint32, cmd cell.Command, payload []byte) {
	b, _ := (&cell.Cell{CircID: id, Command: cmd, Payload: payload}).Encode(4)
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
}

// endpoint records what the reader goroutine hands one circuit.
type endpoint struct {
	*Endpoint
	cells chan *cell.Cell
	ended chan error
}

func newEndpoint(t *testing.T, ch *Channel) *endpoint {
	t.Helper()
	e := &endpoint{cells: make(chan *cell.Cell, 100), ended: make(chan error, 2)}
	var err error
	e.Endpoint, err = ch.NewEndpoint(func(c *cell.Cell) { e.cells <- c }, func(err error) { e.ended <- err })
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *endpoint) waitEnded(t *testing.T) error {
	t.Helper()
	select {
	case err := <-e.ended:
		select {
		case err2 := <-e.ended:
			t.Fatalf("ended twice: %v, then %v", err, err2)
		default:
		}
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("endpoint not ended")
	}
	return nil
}

// drain reads and discards what the client writes to the peer.
func drain(peer net.Conn) {
	go func() {
		for {
			if _, err := cell.Read(peer, 4); err != nil {
				return
			}
		}
	}()
}

// The reader hands each circuit its own cells, in order; cells for an
// unknown or released circuit are dropped without touching the others.
func TestCellsReachTheirCircuit(t *testing.T) {
	ch, peer := fakePeer(t)
	drain(peer)
	a, b := newEndpoint(t, ch), newEndpoint(t, ch)
	if a.ID&0x80000000 == 0 || b.ID&0x80000000 == 0 || a.ID == b.ID {
		t.Fatalf("bad circuit IDs %#x %#x", a.ID, b.ID)
	}
	for i := range 10 {
		writeCell(t, peer, a.ID, cell.RELAY, []byte{byte(i)})
		writeCell(t, peer, b.ID, cell.RELAY, []byte{byte(100 + i)})
		writeCell(t, peer, 0x80000001, cell.RELAY, nil) // no such circuit
	}
	for i := range 10 {
		for _, e := range []*endpoint{a, b} {
			want := byte(i)
			if e == b {
				want += 100
			}
			select {
			case c := <-e.cells:
				if c.CircID != e.ID || c.Payload[0] != want {
					t.Fatalf("circuit %#x got cell %#x %d, want %d", e.ID, c.CircID, c.Payload[0], want)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("circuit %#x: cell %d missing", e.ID, i)
			}
		}
	}
	a.Release(true, cell.DestroyFinished)
	writeCell(t, peer, a.ID, cell.RELAY, nil) // late cell: dropped
	writeCell(t, peer, b.ID, cell.RELAY, nil)
	select {
	case <-b.cells:
	case <-time.After(5 * time.Second):
		t.Fatal("circuit b stopped receiving after a's release")
	}
	if len(a.cells) != 0 || len(a.ended) != 0 {
		t.Fatal("released circuit got a cell or an end")
	}
	if n := ch.NumCircuits(); n != 1 {
		t.Fatalf("%d circuits", n)
	}
}

func TestDestroyAndCloseEndEndpoints(t *testing.T) {
	ch, peer := fakePeer(t)
	drain(peer)
	a, b := newEndpoint(t, ch), newEndpoint(t, ch)
	writeCell(t, peer, a.ID, cell.DESTROY, []byte{byte(cell.DestroyFinished)})
	var de *DestroyError
	if err := a.waitEnded(t); !errors.As(err, &de) || de.Reason != cell.DestroyFinished {
		t.Fatalf("got %v", err)
	}
	peer.Close()
	if err := b.waitEnded(t); err == nil {
		t.Fatal("no error after channel close")
	}
	<-ch.Done()
	if len(a.ended) != 0 {
		t.Fatal("destroyed endpoint ended again by the channel's close")
	}
	if _, err := ch.NewEndpoint(func(*cell.Cell) {}, func(error) {}); err == nil {
		t.Fatal("endpoint on a closed channel")
	}
}

func TestManagerCoalescesDials(t *testing.T) {
	m := NewManager()
	defer m.Close()
	var mu sync.Mutex
	dials := 0
	release := make(chan struct{})
	m.DialFunc = func(ctx context.Context, addr netip.AddrPort, want Identity) (*Channel, error) {
		mu.Lock()
		dials++
		mu.Unlock()
		<-release
		a, b := net.Pipe()
		t.Cleanup(func() { b.Close() })
		return NewFromConn(a, want), nil
	}
	id := Identity{RSAID: [20]byte{1}}
	addr := netip.MustParseAddrPort("127.0.0.1:9001")
	var wg sync.WaitGroup
	got := make([]*Channel, 5)
	for i := range got {
		wg.Go(func() {
			ch, err := m.Get(context.Background(), addr, id)
			if err != nil {
				t.Error(err)
			}
			got[i] = ch
		})
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	if dials != 1 {
		t.Fatalf("%d dials", dials)
	}
	for _, ch := range got {
		if ch != got[0] {
			t.Fatal("different channels")
		}
	}
	// A different Ed25519 identity does not reuse the channel.
	other := id
	other.HasEd25519 = true
	other.Ed25519ID[0] = 9
	ch, err := m.Get(context.Background(), addr, other)
	if err != nil || ch == got[0] {
		t.Fatalf("reused for another Ed25519 identity: %v", err)
	}
	if dials != 2 {
		t.Fatalf("%d dials", dials)
	}
}
