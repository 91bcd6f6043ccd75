package onion

// Client authorization keys: rend-spec-v3 Appendix G.1.3 "Client side
// configuration" (ClientOnionAuthDir, ".auth_private" files) and
// §2.5.1.2 (x25519 descriptor keys).

import (
	"bufio"
	"encoding/base32"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/gotor/gotor/internal/onion/hscrypto"
)

// ClientAuth maps onion services to the client's x25519 secret key for
// descriptor decryption. Safe for concurrent use.
type ClientAuth struct {
	mu   sync.RWMutex
	keys map[[32]byte][32]byte
}

// NewClientAuth returns an empty store.
func NewClientAuth() *ClientAuth { return &ClientAuth{keys: map[[32]byte][32]byte{}} }

// Add registers sk for addr.
func (a *ClientAuth) Add(addr hscrypto.Address, sk [32]byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.keys[addr.PubKey] = sk
}

// Key returns the key for addr, if any. A nil store has no keys.
func (a *ClientAuth) Key(addr hscrypto.Address) (*[32]byte, bool) {
	if a == nil {
		return nil, false
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	k, ok := a.keys[addr.PubKey]
	if !ok {
		return nil, false
	}
	return &k, true
}

var b32NoPad = base32.StdEncoding.WithPadding(base32.NoPadding)

// ParseAuthPrivateLine parses
// "<56-char-onion-addr-without-suffix>:descriptor:x25519:<base32 privkey>".
// C tor also accepts the address with ".onion"; so do we.
func ParseAuthPrivateLine(line string) (hscrypto.Address, [32]byte, error) {
	var sk [32]byte
	parts := strings.Split(strings.TrimSpace(line), ":")
	if len(parts) != 4 {
		return hscrypto.Address{}, sk, fmt.Errorf("onion: auth_private: want 4 colon-separated fields")
	}
	host := parts[0]
	if !strings.HasSuffix(strings.ToLower(host), ".onion") {
		host += ".onion"
	}
	addr, err := hscrypto.ParseAddress(host)
	if err != nil {
		return addr, sk, err
	}
	if parts[1] != "descriptor" || parts[2] != "x25519" {
		return addr, sk, fmt.Errorf("onion: auth_private: unsupported auth type %s:%s", parts[1], parts[2])
	}
	k, err := b32NoPad.DecodeString(strings.ToUpper(strings.TrimRight(parts[3], "=")))
	if err != nil || len(k) != 32 {
		return addr, sk, fmt.Errorf("onion: auth_private: bad x25519 key")
	}
	copy(sk[:], k)
	return addr, sk, nil
}

// LoadReader adds the keys of one ".auth_private" file. Blank lines and
// '#' comments are skipped; the first malformed line is an error.
func (a *ClientAuth) LoadReader(r io.Reader) error {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		addr, sk, err := ParseAuthPrivateLine(line)
		if err != nil {
			return err
		}
		a.Add(addr, sk)
	}
	return sc.Err()
}

// LoadClientAuthDir reads every "*.auth_private" file of dir (the torrc
// ClientOnionAuthDir). Files with other suffixes are ignored, as C tor
// does; a malformed file is reported with its name.
func LoadClientAuthDir(dir string) (*ClientAuth, error) {
	a := NewClientAuth()
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".auth_private") {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		err = a.LoadReader(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name(), err)
		}
	}
	return a, nil
}

func protoSupports(pr, name string, v int) bool { return hscrypto.ProtoSupports(pr, name, v) }
