package bridge

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/channel"
	"github.com/gotor/gotor/internal/guard"
	"github.com/gotor/gotor/internal/netdoc"
	"github.com/gotor/gotor/internal/realdocs"
)

// splitDescs cuts concatenated descriptors at each "router " line.
func splitDescs(src string) []string {
	var out []string
	for len(src) > 0 {
		end := len(src)
		if i := strings.Index(src, "\nrouter "); i >= 0 {
			end = i + 1
		}
		out = append(out, src[:end])
		src = src[end:]
	}
	return out
}

// Real descriptors (arti's, stem's and a C tor bridge's cache file)
// verify at their publication time; changing any byte of one breaks it.
func TestVerifyRealDescriptors(t *testing.T) {
	verified, rsaOnly := 0, 0
	for _, name := range realdocs.Glob(t, "serverdescs/*.txt") {
		for _, raw := range splitDescs(netdoc.FromCacheFile(realdocs.Read(t, name))) {
			d, err := netdoc.ParseServerDesc(raw)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			keys, err := verifyDescriptor(raw, d.Published)
			if !strings.Contains(raw, "\nrouter-sig-ed25519 ") {
				// Before Ed25519 identities: the RSA signature must
				// check, and the descriptor is refused for lacking one.
				if err == nil || !strings.Contains(err.Error(), "no identity-ed25519") {
					t.Errorf("%s %s: %v", name, d.Nickname, err)
				}
				rsaOnly++
				continue
			}
			if err != nil {
				t.Errorf("%s %s: %v", name, d.Nickname, err)
				continue
			}
			if d.HasFingerprint && keys.rsaID != d.Fingerprint {
				t.Errorf("%s %s: signing-key hashes to $%X, fingerprint line says $%X", name, d.Nickname, keys.rsaID, d.Fingerprint)
			}
			if !keys.hasEd || keys.ed25519ID != d.MasterKeyEd25519 {
				t.Errorf("%s %s: Ed25519 identity", name, d.Nickname)
			}
			verified++
			// Tampering anywhere in the signed text is caught.
			for _, old := range []string{"\nbandwidth ", "\nplatform ", "\nntor-onion-key "} {
				i := strings.Index(raw, old)
				if i < 0 {
					continue
				}
				bad := raw[:i+len(old)] + "9" + raw[i+len(old)+1:]
				if _, err := verifyDescriptor(bad, d.Published); err == nil {
					t.Errorf("%s %s: tampered %q accepted", name, d.Nickname, old)
				}
			}
			// An expired identity-ed25519 certificate is refused.
			if _, err := verifyDescriptor(raw, d.Published.Add(5*365*24*time.Hour)); err == nil || !strings.Contains(err.Error(), "expired") {
				t.Errorf("%s %s: five years later: %v", name, d.Nickname, err)
			}
		}
	}
	if verified < 8 || rsaOnly < 2 {
		t.Errorf("verified %d descriptors with Ed25519 and %d RSA-only ones", verified, rsaOnly)
	}
}

func TestCheckDescriptorIdentities(t *testing.T) {
	raw := splitDescs(netdoc.FromCacheFile(realdocs.Read(t, "serverdescs/censorliber-bridge-2024-12.txt")))[0]
	d, err := netdoc.ParseServerDesc(raw)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := verifyDescriptor(raw, d.Published)
	if err != nil {
		t.Fatal(err)
	}
	peer := channel.Identity{RSAID: keys.rsaID, Ed25519ID: keys.ed25519ID, HasEd25519: true}
	line, _ := ParseLine("obfs4 192.0.2.1:443 cert=x")
	desc, err := checkDescriptor(raw, line, peer, d.Published)
	if err != nil {
		t.Fatal(err)
	}
	r := desc.Relay()
	if r.ORAddrPort() != line.Addr || r.RSAID != keys.rsaID || r.NtorOnionKey != d.NtorOnionKey || !r.IsUsable() {
		t.Errorf("Relay = %+v", r)
	}
	nd := NetDir([]*Descriptor{desc})
	if len(nd.Relays) != 1 || nd.ByRSAID[keys.rsaID] == nil || !guard.IsGuardCandidate(nd.Relays[0]) {
		t.Errorf("NetDir = %+v", nd)
	}
	other := peer
	other.RSAID[0] ^= 1
	if _, err := checkDescriptor(raw, line, other, d.Published); err == nil || !strings.Contains(err.Error(), "proved") {
		t.Errorf("descriptor of another relay than the channel's: %v", err)
	}
	other = peer
	other.Ed25519ID[0] ^= 1
	if _, err := checkDescriptor(raw, line, other, d.Published); err == nil || !strings.Contains(err.Error(), "Ed25519") {
		t.Errorf("other Ed25519 identity: %v", err)
	}
	wrong := line
	wrong.Fingerprint, wrong.HasFingerprint = other.RSAID, true
	wrong.Fingerprint[0] ^= 2
	_, err = checkDescriptor(raw, wrong, peer, d.Published)
	var be *Error
	if err == nil || !strings.Contains(err.Error(), "not the bridge line's fingerprint") || !strings.Contains(err.Error(), wrong.Name()) {
		t.Errorf("line fingerprint mismatch: %v", err)
	} else if !errors.As(err, &be) {
		t.Errorf("not a *bridge.Error: %T", err)
	}
	if _, err := checkDescriptor(raw+raw, line, peer, d.Published); err == nil || !strings.Contains(err.Error(), "2 descriptors") {
		t.Errorf("two descriptors: %v", err)
	}
	if _, err := checkDescriptor("garbage\n", line, peer, d.Published); err == nil {
		t.Error("garbage accepted")
	}
}

// FuzzVerifyDescriptor: any input gives an error or a verified identity,
// never a panic.
func FuzzVerifyDescriptor(f *testing.F) {
	realdocs.AddSeeds(f, 64<<10, "serverdescs/*.txt")
	f.Fuzz(func(t *testing.T, s string) {
		verifyDescriptor(s, time.Unix(1700000000, 0))
	})
}
