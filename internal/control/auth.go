// Authentication: control-spec §3.5 (AUTHENTICATE), §3.24 (AUTHCHALLENGE,
// SAFECOOKIE), §5.1 (authentication cookie file: 32 random bytes) and the
// HashedControlPassword format, which is "16:" followed by the hex of
// salt(8) | indicator(1) | SHA-1 digest computed with the RFC 2440
// iterated-and-salted S2K (RFC 2440 §3.6.1.3), as `tor --hash-password`
// prints it.
package control

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

const (
	cookieLen        = 32
	safeCookieNonce  = 32
	s2kSpecifierLen  = 9
	s2kDefaultIndic  = 0x60 // count = 65536, what tor uses
	hashedPasswdLen  = s2kSpecifierLen + sha1.Size
	hashedPasswdPref = "16:"

	serverToController = "Tor safe cookie authentication server-to-controller hash"
	controllerToServer = "Tor safe cookie authentication controller-to-server hash"
)

// s2kCount returns the number of bytes hashed for an RFC 2440 count
// indicator byte.
func s2kCount(c byte) int {
	return (16 + int(c&15)) << ((c >> 4) + 6)
}

// s2kRFC2440 computes the iterated-and-salted SHA-1 S2K: salt||secret is
// repeated until count bytes have been hashed.
func s2kRFC2440(secret []byte, specifier [s2kSpecifierLen]byte) [sha1.Size]byte {
	salt := specifier[:8]
	count := s2kCount(specifier[8])
	buf := make([]byte, 0, len(salt)+len(secret))
	buf = append(buf, salt...)
	buf = append(buf, secret...)
	h := sha1.New()
	for count > 0 {
		n := min(count, len(buf))
		h.Write(buf[:n])
		count -= n
	}
	var out [sha1.Size]byte
	h.Sum(out[:0])
	return out
}

// HashPassword returns a HashedControlPassword value for password with a
// fresh random salt, in the format of `tor --hash-password`.
func HashPassword(password string) string {
	var spec [s2kSpecifierLen]byte
	if _, err := rand.Read(spec[:8]); err != nil {
		panic(err)
	}
	spec[8] = s2kDefaultIndic
	d := s2kRFC2440([]byte(password), spec)
	return hashedPasswdPref + strings.ToUpper(hex.EncodeToString(append(spec[:], d[:]...)))
}

// hashedPassword is a decoded HashedControlPassword.
type hashedPassword struct {
	spec   [s2kSpecifierLen]byte
	digest [sha1.Size]byte
}

// parseHashedPassword decodes a "16:..." HashedControlPassword value.
func parseHashedPassword(s string) (hashedPassword, error) {
	var hp hashedPassword
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, hashedPasswdPref) {
		return hp, errors.New(`HashedControlPassword must start with "16:"`)
	}
	raw, err := hex.DecodeString(s[len(hashedPasswdPref):])
	if err != nil || len(raw) != hashedPasswdLen {
		return hp, errors.New("HashedControlPassword: bad hex or length")
	}
	copy(hp.spec[:], raw[:s2kSpecifierLen])
	copy(hp.digest[:], raw[s2kSpecifierLen:])
	return hp, nil
}

// matches reports whether password hashes to hp.
func (hp hashedPassword) matches(password []byte) bool {
	d := s2kRFC2440(password, hp.spec)
	return subtle.ConstantTimeCompare(d[:], hp.digest[:]) == 1
}

// CheckPassword reports whether password matches a HashedControlPassword
// value.
func CheckPassword(hashed, password string) bool {
	hp, err := parseHashedPassword(hashed)
	return err == nil && hp.matches([]byte(password))
}

// WriteCookie creates a new authentication cookie and writes it to path,
// mode 0600 (0640 when groupReadable), replacing any previous file
// atomically.
func WriteCookie(path string, groupReadable bool) ([]byte, error) {
	mode := os.FileMode(0o600)
	if groupReadable {
		mode = 0o640
	}
	cookie := make([]byte, cookieLen)
	if _, err := rand.Read(cookie); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(path, cookie, mode); err != nil {
		return nil, fmt.Errorf("control: writing cookie: %w", err)
	}
	return cookie, nil
}

// writeFileAtomic writes data to path through a temporary file in the same
// directory (created 0700 if missing), with the given mode.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// safeCookieHashes computes the AUTHCHALLENGE server hash and the expected
// controller hash (control-spec §3.24).
func safeCookieHashes(cookie, clientNonce, serverNonce []byte) (server, client []byte) {
	msg := make([]byte, 0, len(cookie)+len(clientNonce)+len(serverNonce))
	msg = append(msg, cookie...)
	msg = append(msg, clientNonce...)
	msg = append(msg, serverNonce...)
	m := hmac.New(sha256.New, []byte(serverToController))
	m.Write(msg)
	server = m.Sum(nil)
	m = hmac.New(sha256.New, []byte(controllerToServer))
	m.Write(msg)
	client = m.Sum(nil)
	return server, client
}

// authState is the authentication configuration in force. Reconfigure
// replaces it as a whole; connections read it once per command.
type authState struct {
	cookieAuth    bool
	cookieFile    string // absolute; "" without cookie authentication
	groupReadable bool
	cookie        []byte // nil until written
	passwords     []hashedPassword
}

// newAuthState checks the authentication settings of cfg. The cookie of
// old is kept when the cookie settings did not change; otherwise a new
// one must be written (writeCookie).
func newAuthState(cfg Config, old *authState) (*authState, error) {
	a := &authState{cookieAuth: cfg.CookieAuthentication, groupReadable: cfg.CookieAuthFileGroupReadable}
	for _, p := range cfg.HashedControlPassword {
		hp, err := parseHashedPassword(p)
		if err != nil {
			return nil, fmt.Errorf("control: %w", err)
		}
		a.passwords = append(a.passwords, hp)
	}
	if a.cookieAuth {
		f := cfg.CookieAuthFile
		if f == "" {
			if cfg.DataDirectory == "" {
				return nil, errors.New("control: CookieAuthentication needs CookieAuthFile or DataDirectory")
			}
			f = filepath.Join(cfg.DataDirectory, "control_auth_cookie")
		}
		abs, err := filepath.Abs(f)
		if err != nil {
			return nil, err
		}
		a.cookieFile = abs
		if old != nil && old.cookieAuth && old.cookieFile == abs && old.groupReadable == a.groupReadable {
			a.cookie = old.cookie
		}
	}
	if !a.cookieAuth && len(a.passwords) == 0 && !cfg.AllowNullAuth {
		return nil, errors.New("control: no authentication method configured (set CookieAuthentication, HashedControlPassword or AllowNullAuth)")
	}
	return a, nil
}

// writeCookie writes a new cookie to a.cookieFile (control-spec §5.1).
func (a *authState) writeCookie() error {
	c, err := WriteCookie(a.cookieFile, a.groupReadable)
	if err != nil {
		return err
	}
	a.cookie = c
	return nil
}
