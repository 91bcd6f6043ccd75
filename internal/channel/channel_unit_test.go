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

func TestSlowCircuitDoesNotBlockOthers(t *testing.T) {
	old := QueueLen
	QueueLen = 8
	defer func() { QueueLen = old }()
	ch, peer := fakePeer(t)
	slow, _ := ch.NewEndpoint()
	fast, _ := ch.NewEndpoint()
	if slow.ID&0x80000000 == 0 || fast.ID&0x80000000 == 0 || slow.ID == fast.ID {
		t.Fatalf("bad circuit IDs %#x %#x", slow.ID, fast.ID)
	}
	got := make(chan *cell.Cell, 100)
	go func() {
		for c := range fast.In() {
			got <- c
		}
	}()
	// DESTROY for the slow circuit comes back to the peer: read it.
	destroyed := make(chan cell.DestroyReason, 1)
	go func() {
		for {
			c, err := cell.Read(peer, 4)
			if err != nil {
				return
			}
			if c.Command == cell.DESTROY && c.CircID == slow.ID {
				destroyed <- cell.DestroyReason(c.Payload[0])
			}
		}
	}()
	// The slow circuit is never read, so its queue fills after QueueLen
	// cells; the fast one is read as it goes (one cell in flight, so a
	// loaded machine cannot overflow its queue too), and must keep
	// receiving while the slow one is full and then destroyed.
	for i := 0; i < 20; i++ {
		writeCell(t, peer, slow.ID, cell.RELAY, nil)
		writeCell(t, peer, fast.ID, cell.RELAY, nil)
		select {
		case <-got:
		case <-time.After(5 * time.Second):
			t.Fatalf("fast circuit got only %d cells", i)
		}
	}
	n := 0
	for range slow.In() {
		n++
	}
	if n != QueueLen || !errors.Is(slow.Err(), ErrQueueOverflow) {
		t.Fatalf("slow circuit: %d cells, err %v", n, slow.Err())
	}
	select {
	case r := <-destroyed:
		if r != cell.DestroyResourceLimit {
			t.Fatalf("reason %v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no DESTROY sent for the overflowing circuit")
	}
}

func TestDestroyAndCloseFailEndpoints(t *testing.T) {
	ch, peer := fakePeer(t)
	go func() { // drain client writes
		for {
			if _, err := cell.Read(peer, 4); err != nil {
				return
			}
		}
	}()
	a, _ := ch.NewEndpoint()
	b, _ := ch.NewEndpoint()
	writeCell(t, peer, a.ID, cell.DESTROY, []byte{byte(cell.DestroyFinished)})
	for range a.In() {
	}
	var de *DestroyError
	if !errors.As(a.Err(), &de) || de.Reason != cell.DestroyFinished {
		t.Fatalf("got %v", a.Err())
	}
	peer.Close()
	for range b.In() {
	}
	if b.Err() == nil {
		t.Fatal("no error after channel close")
	}
	<-ch.Done()
	if _, err := ch.NewEndpoint(); err == nil {
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
