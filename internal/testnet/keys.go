package testnet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Key generation (tor-gencert's 3072-bit RSA key above all) is most of a
// network's start time on a loaded machine, so keys are generated once per
// node slot (auth0, relay1, exit0, ...) and kept in a cache. Two networks
// running at once may then use the same identities: harmless, since each
// network only knows its own nodes (by address and port).

// KeyCacheDir is the directory of cached node keys: $GOTOR_TESTNET_KEYCACHE
// when set ("off" disables the cache and returns ""), else
// $XDG_CACHE_HOME/gotor-testnet/keys-v1 (usually ~/.cache/...).
func KeyCacheDir() string {
	if d := os.Getenv("GOTOR_TESTNET_KEYCACHE"); d != "" {
		if d == "off" {
			return ""
		}
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "gotor-testnet", "keys-v1")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("gotor-keycache-%d", os.Getuid()))
}

// makeKeys gives the node its identity keys (and, for authorities, the v3
// authority key and certificate), from the cache or freshly made, and
// fills in its fingerprints.
func (n *Network) makeKeys(ctx context.Context, nd *node, gencert string) error {
	cache := ""
	if !n.opts.FreshKeys {
		cache = KeyCacheDir()
	}
	if cache != "" {
		if err := loadCachedKeys(filepath.Join(cache, nd.Nickname), nd); err == nil {
			return nil
		}
		// Start over from an empty key directory.
		keys := filepath.Join(nd.DataDir, "keys")
		os.RemoveAll(keys)
		os.Remove(filepath.Join(nd.DataDir, "fingerprint"))
		os.Remove(filepath.Join(nd.DataDir, "fingerprint-ed25519"))
		if err := os.MkdirAll(keys, 0o700); err != nil {
			return err
		}
	}
	if err := n.generateKeys(ctx, nd, gencert); err != nil {
		return err
	}
	if cache != "" {
		storeCachedKeys(cache, nd) // best effort
	}
	return nil
}

func (n *Network) generateKeys(ctx context.Context, nd *node, gencert string) error {
	keys := filepath.Join(nd.DataDir, "keys")
	if nd.IsAuthority {
		_, err := runOut(ctx, "\n", gencert, "--create-identity-key", "--passphrase-fd", "0", "-m", "12",
			"-i", filepath.Join(keys, "authority_identity_key"),
			"-s", filepath.Join(keys, "authority_signing_key"),
			"-c", filepath.Join(keys, "authority_certificate"))
		if err != nil {
			return fmt.Errorf("testnet: tor-gencert for %s: %w", nd.Nickname, err)
		}
		if nd.V3Ident, err = certFingerprint(filepath.Join(keys, "authority_certificate")); err != nil {
			return err
		}
	}
	_, err := runOut(ctx, "", n.tor, "--defaults-torrc", n.empty, "-f", n.empty, "--list-fingerprint",
		"--DataDirectory", nd.DataDir,
		"--ORPort", nd.ORAddr(),
		"--Address", nd.Address,
		"--Nickname", nd.Nickname,
		"--ContactInfo", "gotor-testnet",
		"--ExitRelay", "0",
		"--Log", "err stderr")
	if err != nil {
		return fmt.Errorf("testnet: tor --list-fingerprint for %s: %w", nd.Nickname, err)
	}
	return readFingerprints(nd)
}

func readFingerprints(nd *node) error {
	var err error
	if nd.Fingerprint, err = readNickValueFile(filepath.Join(nd.DataDir, "fingerprint")); err != nil {
		return err
	}
	if nd.Ed25519, err = readNickValueFile(filepath.Join(nd.DataDir, "fingerprint-ed25519")); err != nil {
		return err
	}
	nd.Fingerprint = strings.ToUpper(nd.Fingerprint)
	if len(nd.Fingerprint) != 40 {
		return fmt.Errorf("testnet: bad fingerprint %q for %s", nd.Fingerprint, nd.Nickname)
	}
	return nil
}

// certFingerprint returns the "fingerprint" of an authority key
// certificate, after checking that it stays valid for at least a week.
func certFingerprint(path string) (string, error) {
	cert, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	fp := ""
	for _, line := range strings.Split(string(cert), "\n") {
		if v, ok := strings.CutPrefix(line, "fingerprint "); ok {
			fp = strings.ToUpper(strings.TrimSpace(v))
		}
		if v, ok := strings.CutPrefix(line, "dir-key-expires "); ok {
			exp, err := time.Parse("2006-01-02 15:04:05", strings.TrimSpace(v))
			if err != nil || time.Until(exp) < 7*24*time.Hour {
				return "", fmt.Errorf("testnet: %s expires soon (%s)", path, v)
			}
		}
	}
	if len(fp) != 40 {
		return "", fmt.Errorf("testnet: no fingerprint in %s", path)
	}
	return fp, nil
}

// loadCachedKeys copies a cache slot into the node's data directory.
func loadCachedKeys(slot string, nd *node) error {
	// "complete" holds a random generation id: reading the same id before
	// and after copying proves the copy did not straddle a replacement.
	gen, err := os.ReadFile(filepath.Join(slot, "complete"))
	if err != nil {
		return err
	}
	keys := filepath.Join(nd.DataDir, "keys")
	ents, err := os.ReadDir(filepath.Join(slot, "keys"))
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.Type().IsRegular() {
			if err := copyFile(filepath.Join(slot, "keys", e.Name()), filepath.Join(keys, e.Name())); err != nil {
				return err
			}
		}
	}
	for _, f := range []string{"fingerprint", "fingerprint-ed25519"} {
		if err := copyFile(filepath.Join(slot, f), filepath.Join(nd.DataDir, f)); err != nil {
			return err
		}
	}
	if gen2, err := os.ReadFile(filepath.Join(slot, "complete")); err != nil || string(gen2) != string(gen) {
		return fmt.Errorf("testnet: key cache slot %s replaced while reading", slot)
	}
	if nd.IsAuthority {
		if nd.V3Ident, err = certFingerprint(filepath.Join(keys, "authority_certificate")); err != nil {
			return err
		}
	}
	return readFingerprints(nd)
}

// storeCachedKeys saves the node's freshly made keys as its cache slot
// (atomically: a slot is complete or absent).
func storeCachedKeys(cache string, nd *node) {
	if err := os.MkdirAll(cache, 0o700); err != nil {
		return
	}
	tmp, err := os.MkdirTemp(cache, ".tmp-"+nd.Nickname+"-")
	if err != nil {
		return
	}
	defer os.RemoveAll(tmp)
	if err := os.Mkdir(filepath.Join(tmp, "keys"), 0o700); err != nil {
		return
	}
	ents, err := os.ReadDir(filepath.Join(nd.DataDir, "keys"))
	if err != nil {
		return
	}
	for _, e := range ents {
		if e.Type().IsRegular() {
			if copyFile(filepath.Join(nd.DataDir, "keys", e.Name()), filepath.Join(tmp, "keys", e.Name())) != nil {
				return
			}
		}
	}
	for _, f := range []string{"fingerprint", "fingerprint-ed25519"} {
		if copyFile(filepath.Join(nd.DataDir, f), filepath.Join(tmp, f)) != nil {
			return
		}
	}
	var gen [16]byte
	rand.Read(gen[:])
	if os.WriteFile(filepath.Join(tmp, "complete"), []byte(hex.EncodeToString(gen[:])), 0o600) != nil {
		return
	}
	slot := filepath.Join(cache, nd.Nickname)
	if _, err := os.Stat(slot); err == nil {
		if slotUsable(slot, nd.IsAuthority) {
			return // a concurrent writer won: keep its keys
		}
		// An unusable slot (e.g. an expiring certificate): move it away.
		old := tmp + ".old"
		if os.Rename(slot, old) == nil {
			os.RemoveAll(old)
		}
	}
	os.Rename(tmp, slot) // loses harmlessly to a concurrent writer
}

// slotUsable reports whether a cache slot is complete and, for an
// authority, has a certificate valid for another week.
func slotUsable(slot string, authority bool) bool {
	if _, err := os.Stat(filepath.Join(slot, "complete")); err != nil {
		return false
	}
	if authority {
		if _, err := certFingerprint(filepath.Join(slot, "keys", "authority_certificate")); err != nil {
			return false
		}
	}
	return true
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
