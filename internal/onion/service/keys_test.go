package service

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

type fixedReader byte

func (f fixedReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(f)
	}
	return len(p), nil
}

func TestGenerateIdentityIsEd25519(t *testing.T) {
	id, err := GenerateIdentity(fixedReader(7))
	if err != nil {
		t.Fatal(err)
	}
	seed := bytes.Repeat([]byte{7}, 32)
	want := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	if pk := id.Address().PubKey; !bytes.Equal(pk[:], want) {
		t.Fatal("public key differs from ed25519's for the same seed")
	}
	raw := id.Expanded()
	again, err := IdentityFromExpanded(raw[:])
	if err != nil || again.Address() != id.Address() {
		t.Fatalf("round trip: %v", err)
	}
	if _, err := IdentityFromExpanded(raw[:63]); !errors.Is(err, ErrDamagedKey) {
		t.Fatalf("63-byte key: %v", err)
	}
}

func TestLoadDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "hs")
	k, err := LoadDir(dir, false, fixedReader(1), nil)
	if err != nil || !k.Generated || len(k.AuthorizedClients) != 0 {
		t.Fatalf("first load: %+v %v", k, err)
	}
	// C tor's tagged files: 32-byte NUL-padded header, then the key.
	sec, _ := os.ReadFile(filepath.Join(dir, SecretKeyFile))
	pub, _ := os.ReadFile(filepath.Join(dir, PublicKeyFile))
	if len(sec) != 96 || string(bytes.TrimRight(sec[:32], "\x00")) != "== ed25519v1-secret: type0 ==" {
		t.Fatalf("secret key file %q", sec[:32])
	}
	id := k.Identity.Address().PubKey
	if len(pub) != 64 || string(bytes.TrimRight(pub[:32], "\x00")) != "== ed25519v1-public: type0 ==" || !bytes.Equal(pub[32:], id[:]) {
		t.Fatalf("public key file %q", pub)
	}
	host, _ := os.ReadFile(filepath.Join(dir, HostnameFile))
	if string(host) != k.Identity.Address().String()+"\n" {
		t.Fatalf("hostname %q", host)
	}
	for name, want := range map[string]fs.FileMode{"": 0o700, SecretKeyFile: 0o600, HostnameFile: 0o600, AuthorizedClientsDir: 0o700} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil || st.Mode().Perm() != want {
			t.Errorf("%q: mode %v, want %v (%v)", name, st.Mode().Perm(), want, err)
		}
	}
	// Reloading keeps the key; an edited hostname is rewritten.
	os.WriteFile(filepath.Join(dir, HostnameFile), []byte("wrong\n"), 0o600)
	k2, err := LoadDir(dir, false, fixedReader(2), nil)
	if err != nil || k2.Generated || k2.Identity.Address() != k.Identity.Address() {
		t.Fatalf("reload: %v", err)
	}
	if h, _ := os.ReadFile(filepath.Join(dir, HostnameFile)); !bytes.Equal(h, host) {
		t.Fatalf("hostname not restored: %q", h)
	}
	// Group-readable directories (HiddenServiceDirGroupReadable).
	if _, err := LoadDir(dir, true, nil, nil); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(filepath.Join(dir, HostnameFile)); st.Mode().Perm() != 0o640 {
		t.Errorf("group-readable hostname mode %v", st.Mode().Perm())
	}
	// Too open permissions are tightened again.
	os.Chmod(dir, 0o777)
	if _, err := LoadDir(dir, false, nil, nil); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("mode not fixed: %v", st.Mode().Perm())
	}
}

func TestLoadDirDamaged(t *testing.T) {
	mk := func(t *testing.T) string {
		dir := filepath.Join(t.TempDir(), "hs")
		if _, err := LoadDir(dir, false, nil, nil); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	t.Run("truncated secret", func(t *testing.T) {
		dir := mk(t)
		p := filepath.Join(dir, SecretKeyFile)
		b, _ := os.ReadFile(p)
		os.WriteFile(p, b[:90], 0o600)
		if _, err := LoadDir(dir, false, nil, nil); !errors.Is(err, ErrDamagedKey) {
			t.Fatalf("%v", err)
		}
		if after, _ := os.ReadFile(p); len(after) != 90 {
			t.Fatal("damaged key file was overwritten")
		}
	})
	t.Run("wrong header", func(t *testing.T) {
		dir := mk(t)
		p := filepath.Join(dir, SecretKeyFile)
		b, _ := os.ReadFile(p)
		copy(b, "== ed25519v1-public: type0 ==")
		os.WriteFile(p, b, 0o600)
		if _, err := LoadDir(dir, false, nil, nil); !errors.Is(err, ErrDamagedKey) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("mismatched public key", func(t *testing.T) {
		dir := mk(t)
		p := filepath.Join(dir, PublicKeyFile)
		b, _ := os.ReadFile(p)
		b[40] ^= 1
		os.WriteFile(p, b, 0o600)
		if _, err := LoadDir(dir, false, nil, nil); !errors.Is(err, ErrDamagedKey) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("public key only", func(t *testing.T) {
		dir := mk(t)
		os.Remove(filepath.Join(dir, SecretKeyFile))
		if _, err := LoadDir(dir, false, nil, nil); err == nil {
			t.Fatal("loaded a directory without its secret key")
		}
		if _, err := os.Stat(filepath.Join(dir, SecretKeyFile)); err == nil {
			t.Fatal("generated a new key next to an existing public key")
		}
	})
}

func TestAuthorizedClients(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "hs")
	cd := filepath.Join(dir, AuthorizedClientsDir)
	os.MkdirAll(cd, 0o700)
	pk := [32]byte{1, 2, 3}
	files := map[string]string{
		"alice.auth":   FormatAuthorizedClient(pk),
		"alice2.auth":  "  " + FormatAuthorizedClient(pk), // duplicate key
		"bob.auth":     "descriptor:x25519:NOTBASE32!!",
		"carol.auth":   "descriptor:ed25519:" + b32.EncodeToString(pk[:]),
		"dave.txt":     FormatAuthorizedClient([32]byte{9}),
		"erin.auth":    "descriptor:x25519:" + b32.EncodeToString([]byte{4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35}) + "\n",
		"frank.auth":   "descriptor:x25519",
		"garbage.auth": "\x00\xff",
	}
	for n, c := range files {
		os.WriteFile(filepath.Join(cd, n), []byte(c), 0o600)
	}
	k, err := LoadDir(dir, false, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(k.AuthorizedClients) != 2 || k.AuthorizedClients[0] != pk {
		t.Fatalf("clients %x", k.AuthorizedClients)
	}
	if got, err := ParseAuthorizedClient(FormatAuthorizedClient(pk)); err != nil || got != pk {
		t.Fatalf("round trip: %v", err)
	}
}
