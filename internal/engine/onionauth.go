package engine

// Onion service client authorization from the control port
// (control-spec §3.30 ONION_CLIENT_AUTH_ADD, §3.31 _REMOVE, §3.32 _VIEW;
// C tor's hs_client_register_auth_credentials,
// store_permanent_client_auth_credentials): keys added at run time, in
// memory, or with Flags=Permanent also as ClientOnionAuthDir/<address>
// .auth_private (rend-spec-v3 Appendix G.1.3's format); keys loaded from
// that directory at start are permanent.

import (
	"encoding/base32"
	"errors"
	"os"
	"path/filepath"
	"sync"

	"github.com/gotor/gotor/internal/control"
	"github.com/gotor/gotor/internal/onion"
	"github.com/gotor/gotor/internal/onion/hscrypto"
)

// authMeta is what the control port knows of a key beyond the key.
type authMeta struct {
	name      string
	permanent bool
}

type authNames struct {
	mu sync.Mutex
	m  map[[32]byte]authMeta // by service public key
}

var b32Upper = base32.StdEncoding.WithPadding(base32.NoPadding)

func parseService(addr string) (hscrypto.Address, error) {
	a, err := hscrypto.ParseAddress(addr + ".onion")
	if err != nil {
		return a, control.Error(control.ErrInvalidValue, err.Error())
	}
	return a, nil
}

func (b controlBackend) OnionClientAuthAdd(ca control.ClientAuth) (bool, error) {
	c := b.c
	addr, err := parseService(ca.Address)
	if err != nil {
		return false, err
	}
	if ca.Permanent {
		dir := c.conf().ClientOnionAuthDir
		if dir == "" {
			c.log.Warn("Can't register permanent client auth credentials without ClientOnionAuthDir option. Discarding.")
			return false, errors.New("no ClientOnionAuthDir")
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return false, err
		}
		line := ca.Address + ":descriptor:x25519:" + b32Upper.EncodeToString(ca.Key[:])
		if err := os.WriteFile(filepath.Join(dir, ca.Address+".auth_private"), []byte(line+"\n"), 0o600); err != nil {
			return false, err
		}
	}
	_, had := c.onionAuth.Key(addr)
	c.onionAuth.Add(addr, ca.Key)
	c.authNames.mu.Lock()
	if c.authNames.m == nil {
		c.authNames.m = map[[32]byte]authMeta{}
	}
	c.authNames.m[addr.PubKey] = authMeta{name: ca.Name, permanent: ca.Permanent}
	c.authNames.mu.Unlock()
	return had, nil
}

func (b controlBackend) OnionClientAuthRemove(address string) (bool, error) {
	c := b.c
	addr, err := parseService(address)
	if err != nil {
		return false, err
	}
	meta, known := c.authMeta(addr.PubKey)
	if !c.onionAuth.Remove(addr) {
		return false, nil
	}
	c.authNames.mu.Lock()
	delete(c.authNames.m, addr.PubKey)
	c.authNames.mu.Unlock()
	if dir := c.conf().ClientOnionAuthDir; dir != "" && (!known || meta.permanent) {
		if err := os.Remove(filepath.Join(dir, address+".auth_private")); err != nil && !errors.Is(err, os.ErrNotExist) {
			c.log.Warn("could not remove a client authorization file", "err", err)
		}
	}
	if oc := c.onionClient(); oc != nil {
		oc.Forget(address + ".onion") // as C tor, which drops the descriptor
	}
	return true, nil
}

func (b controlBackend) OnionClientAuthView(address string) ([]control.ClientAuth, error) {
	c := b.c
	var out []control.ClientAuth
	for pub, sk := range c.onionAuth.Keys() {
		label := hscrypto.Address{PubKey: pub}.Label()
		if address != "" && label != address {
			continue
		}
		meta, known := c.authMeta(pub)
		out = append(out, control.ClientAuth{Address: label, Key: sk, Name: meta.name,
			Permanent: meta.permanent || !known}) // unknown: loaded from ClientOnionAuthDir
	}
	return out, nil
}

func (c *Engine) authMeta(pub [32]byte) (authMeta, bool) {
	c.authNames.mu.Lock()
	defer c.authNames.mu.Unlock()
	m, ok := c.authNames.m[pub]
	return m, ok
}

// clientAuth returns the key store the onion client uses: the keys of
// ClientOnionAuthDir, or an empty store that ONION_CLIENT_AUTH_ADD fills.
func clientAuth(dir string) (*onion.ClientAuth, error) {
	if dir == "" {
		return onion.NewClientAuth(), nil
	}
	return onion.LoadClientAuthDir(dir)
}
