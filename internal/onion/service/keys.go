// The service's keys in C tor's HiddenServiceDir format, so a directory
// moves between C tor and gotor unchanged: rend-spec-v3 Appendix F
// [HIDSERVDIR-FORMAT] ("hostname", the identity key, "authorized_clients/")
// and Appendix G.1.1/G.1.2 (".auth" files). The key files are C tor's
// tagged-data files (crypto_write_tagged_contents_to_file): a 32-byte
// NUL-padded header "== ed25519v1-secret: type0 ==" followed by the
// 64-byte expanded secret key (clamped scalar | hash prefix), and
// "== ed25519v1-public: type0 ==" followed by the 32-byte public key.
// Names, modes and checks follow C tor's hs_service.c load_service_keys,
// write_address_to_file and load_client_keys.

package service

import (
	"bytes"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/gotor/gotor/internal/onion/hscrypto"
)

// File names inside a HiddenServiceDir.
const (
	SecretKeyFile        = "hs_ed25519_secret_key"
	PublicKeyFile        = "hs_ed25519_public_key"
	HostnameFile         = "hostname"
	AuthorizedClientsDir = "authorized_clients"
)

const (
	secretTag = "== ed25519v1-secret: type0 =="
	publicTag = "== ed25519v1-public: type0 =="
	tagLen    = 32
)

// ErrDamagedKey reports a key file that is not a C tor ed25519 key file
// (wrong header or length) or a public key that does not match the secret.
var ErrDamagedKey = errors.New("onion service: damaged key file")

// Identity is a service's long-term identity key pair (KS_hs_id,
// KP_hs_id), kept in C tor's 64-byte expanded form.
type Identity struct {
	raw [64]byte
	key *hscrypto.ExpandedKey
}

// GenerateIdentity makes a new identity from 32 random bytes, expanded
// as ed25519 does (SHA-512, then clamping), as C tor generates one.
func GenerateIdentity(r io.Reader) (*Identity, error) {
	if r == nil {
		r = rand.Reader
	}
	var seed [32]byte
	if _, err := io.ReadFull(r, seed[:]); err != nil {
		return nil, err
	}
	d := sha512.Sum512(seed[:])
	d[0] &= 248
	d[31] &= 63
	d[31] |= 64
	return IdentityFromExpanded(d[:])
}

// IdentityFromExpanded takes the 64-byte expanded secret key (the body
// of hs_ed25519_secret_key, and what ADD_ONION's "ED25519-V3:" key blob
// holds in base64).
func IdentityFromExpanded(b []byte) (*Identity, error) {
	if len(b) != 64 {
		return nil, fmt.Errorf("%w: expanded ed25519 key must be 64 bytes, not %d", ErrDamagedKey, len(b))
	}
	k, err := hscrypto.ExpandedFromBytes(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDamagedKey, err)
	}
	id := &Identity{key: k}
	copy(id.raw[:], b)
	return id, nil
}

// Expanded returns the 64-byte expanded secret key.
func (id *Identity) Expanded() [64]byte { return id.raw }

// Address returns the service's onion address.
func (id *Identity) Address() hscrypto.Address { return hscrypto.Address{PubKey: id.key.Public} }

func tagged(tag string, body []byte) []byte {
	out := make([]byte, tagLen, tagLen+len(body))
	copy(out, tag)
	return append(out, body...)
}

func untag(b []byte, tag string, n int) ([]byte, error) {
	if len(b) != tagLen+n {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrDamagedKey, len(b), tagLen+n)
	}
	want := make([]byte, tagLen)
	copy(want, tag)
	if !bytes.Equal(b[:tagLen], want) {
		return nil, fmt.Errorf("%w: header %q, want %q", ErrDamagedKey, bytes.TrimRight(b[:tagLen], "\x00"), tag)
	}
	return b[tagLen:], nil
}

// DirKeys is what a HiddenServiceDir holds.
type DirKeys struct {
	Identity *Identity
	// AuthorizedClients are the x25519 public keys of the well-formed
	// ".auth" files; none means the service is public.
	AuthorizedClients [][32]byte
	// Generated is true when the identity key was created now.
	Generated bool
}

// LoadDir opens (creating if needed) a HiddenServiceDir: it loads the
// identity key or generates one, writes the public key and hostname
// files, and reads authorized_clients/*.auth. The directory and its
// files are private to the user (0700/0600), or group-readable
// (0750/0640) with groupReadable (HiddenServiceDirGroupReadable). A
// damaged key file is an error (wrapping ErrDamagedKey) and nothing is
// overwritten; malformed ".auth" files are skipped with a warning, as C
// tor does.
func LoadDir(dir string, groupReadable bool, r io.Reader, log *slog.Logger) (*DirKeys, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dirMode, fileMode := fs.FileMode(0o700), fs.FileMode(0o600)
	if groupReadable {
		dirMode, fileMode = 0o750, 0o640
	}
	if err := privateDir(dir, dirMode, log); err != nil {
		return nil, err
	}
	dk := &DirKeys{}
	secretPath := filepath.Join(dir, SecretKeyFile)
	b, err := os.ReadFile(secretPath)
	switch {
	case err == nil:
		body, err := untag(b, secretTag, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", secretPath, err)
		}
		if dk.Identity, err = IdentityFromExpanded(body); err != nil {
			return nil, fmt.Errorf("%s: %w", secretPath, err)
		}
	case errors.Is(err, fs.ErrNotExist):
		if _, err := os.Stat(filepath.Join(dir, PublicKeyFile)); err == nil {
			// C tor's offline master keys: not supported.
			return nil, fmt.Errorf("%s: missing (only %s exists; offline keys are not supported)", secretPath, PublicKeyFile)
		}
		if dk.Identity, err = GenerateIdentity(r); err != nil {
			return nil, err
		}
		raw := dk.Identity.Expanded()
		if err := writeFile(secretPath, tagged(secretTag, raw[:]), 0o600); err != nil {
			return nil, err
		}
		dk.Generated = true
		log.Info("onion service: generated a new identity key", "dir", dir)
	default:
		return nil, err
	}
	pub := dk.Identity.key.Public
	pubPath := filepath.Join(dir, PublicKeyFile)
	if b, err := os.ReadFile(pubPath); err == nil {
		body, err := untag(b, publicTag, 32)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", pubPath, err)
		}
		if !bytes.Equal(body, pub[:]) {
			return nil, fmt.Errorf("%s: %w: public key does not match %s", pubPath, ErrDamagedKey, SecretKeyFile)
		}
	} else if errors.Is(err, fs.ErrNotExist) {
		if err := writeFile(pubPath, tagged(publicTag, pub[:]), 0o600); err != nil {
			return nil, err
		}
	} else {
		return nil, err
	}
	host := dk.Identity.Address().String() + "\n"
	hostPath := filepath.Join(dir, HostnameFile)
	if old, err := os.ReadFile(hostPath); err != nil || string(old) != host {
		if err := writeFile(hostPath, []byte(host), fileMode); err != nil {
			return nil, err
		}
	}
	os.Chmod(hostPath, fileMode) // as C tor, which chmods it 0640 when group-readable
	clients := filepath.Join(dir, AuthorizedClientsDir)
	if err := privateDir(clients, dirMode, log); err != nil {
		return nil, err
	}
	dk.AuthorizedClients, err = loadAuthorizedClients(clients, log)
	return dk, err
}

// privateDir creates dir with mode, or tightens an existing directory
// whose group or other bits exceed mode (C tor's check_private_dir fixes
// them too).
func privateDir(dir string, mode fs.FileMode, log *slog.Logger) error {
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, mode); err != nil {
			return err
		}
		return os.Chmod(dir, mode) // umask may have cut bits; set exactly
	}
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("onion service: %s is not a directory", dir)
	}
	if st.Mode().Perm()&^mode != 0 {
		log.Warn("onion service: fixing permissions of directory", "dir", dir, "was", st.Mode().Perm(), "now", mode)
		return os.Chmod(dir, mode)
	}
	return nil
}

// writeFile writes through a temporary file and a rename, so a crash
// never leaves a half-written key.
func writeFile(path string, data []byte, mode fs.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// ParseAuthorizedClient parses one ".auth" file's content,
// "descriptor:x25519:<base32 public key>" (surrounding white space
// allowed, as C tor's SPLIT_SKIP_SPACE).
func ParseAuthorizedClient(s string) ([32]byte, error) {
	var pk [32]byte
	f := strings.Split(strings.TrimSpace(s), ":")
	if len(f) != 3 {
		return pk, errors.New("want <auth-type>:<key-type>:<base32 key>")
	}
	for i := range f {
		f[i] = strings.TrimSpace(f[i])
	}
	if f[0] != "descriptor" {
		return pk, fmt.Errorf("auth type %q not supported", f[0])
	}
	if f[1] != "x25519" {
		return pk, fmt.Errorf("key type %q not supported", f[1])
	}
	if len(f[2]) != 52 {
		return pk, fmt.Errorf("base32 key has %d characters, want 52", len(f[2]))
	}
	k, err := b32.DecodeString(strings.ToUpper(f[2]))
	if err != nil || len(k) != 32 {
		return pk, errors.New("key is not valid base32")
	}
	return [32]byte(k), nil
}

// FormatAuthorizedClient is the ".auth" file content for a client key.
func FormatAuthorizedClient(pk [32]byte) string {
	return "descriptor:x25519:" + b32.EncodeToString(pk[:]) + "\n"
}

func loadAuthorizedClients(dir string, log *slog.Logger) ([][32]byte, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var keys [][32]byte
	seen := map[[32]byte]bool{}
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".auth") || name == ".auth" {
			log.Warn("onion service: ignoring client authorization file (must end in .auth)", "file", name)
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			log.Warn("onion service: cannot read client authorization file", "file", name, "err", err)
			continue
		}
		pk, err := ParseAuthorizedClient(string(b))
		if err != nil {
			log.Warn("onion service: ignoring malformed client authorization file", "file", name, "err", err)
			continue
		}
		if !seen[pk] {
			seen[pk] = true
			keys = append(keys, pk)
		}
	}
	return keys, nil
}
