package netdoc

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/realdocs"
)

// realConsensus is a consensus of the public network (2026-06-27, nine
// signatures) with its authorities' certificates, from a C tor
// DataDirectory on Windows (cached-certs has CRLF line ends).
func realConsensus(t testing.TB) (text string, c *Consensus, ids [][20]byte, certs []*KeyCert) {
	t.Helper()
	text = realdocs.Read(t, "consensus/mediacoder-md-2026-06-27.txt.gz")
	c, err := ParseConsensus(text)
	if err != nil {
		t.Fatal(err)
	}
	certs, err = ParseKeyCerts(FromCacheFile(realdocs.Read(t, "certs/mediacoder-2026-06.txt")))
	if err != nil {
		t.Fatal(err)
	}
	for _, kc := range certs {
		if err := kc.Verify(c.ValidAfter); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, kc.Fingerprint)
	}
	return text, c, ids, certs
}

// sigBlocks splits a consensus into the text before its first
// directory-signature and the signature items.
func sigBlocks(t testing.TB, text string) (head string, sigs []string) {
	t.Helper()
	i := strings.Index(text, "\ndirectory-signature ")
	if i < 0 {
		t.Fatal("no directory-signature")
	}
	head = text[:i+1]
	for _, p := range strings.SplitAfter(text[i+1:], "-----END SIGNATURE-----\n") {
		if p != "" {
			sigs = append(sigs, p)
		}
	}
	return head, sigs
}

// flipSig changes one base64 character of a signature item's object.
func flipSig(sig string) string {
	i := strings.Index(sig, "-----BEGIN SIGNATURE-----\n") + len("-----BEGIN SIGNATURE-----\n") + 20
	c := byte('A')
	if sig[i] == 'A' {
		c = 'B'
	}
	return sig[:i] + string(c) + sig[i+1:]
}

func TestVerifyRealConsensus(t *testing.T) {
	text, c, ids, certs := realConsensus(t)
	st, err := c.Verify(ids, certs)
	if err != nil || st.Good != 9 || st.Bad != 0 {
		t.Fatalf("Verify = %+v, %v; want 9 good", st, err)
	}
	head, sigs := sigBlocks(t, text)
	if len(sigs) != 9 {
		t.Fatalf("%d signatures", len(sigs))
	}
	verify := func(sigs []string) (SignatureStatus, error) {
		t.Helper()
		c, err := ParseConsensus(head + strings.Join(sigs, ""))
		if err != nil {
			t.Fatal(err)
		}
		return c.Verify(ids, certs)
	}

	// One configured authority's signature is bad: the eight others
	// carry the consensus, and the bad one is reported (issue 17 item 11).
	one := append([]string(nil), sigs...)
	one[3] = flipSig(one[3])
	st, err = verify(one)
	if err != nil || st.Good != 8 || st.Bad != 1 || len(st.BadErrs) != 1 || !errors.Is(st.BadErrs[0], ErrBadSignature) {
		t.Errorf("one bad signature: %+v, %v; want accepted with 8 good, 1 bad", st, err)
	}

	// Five bad: four good are not a majority of nine.
	five := append([]string(nil), sigs...)
	for i := range 5 {
		five[i] = flipSig(five[i])
	}
	st, err = verify(five)
	if !errors.Is(err, ErrTooFewSignatures) || !errors.Is(err, ErrBadSignature) || st.Good != 4 || st.Bad != 5 {
		t.Errorf("five bad signatures: %+v, %v", st, err)
	}

	// A signature counts once per authority, however many it makes.
	dup := append(append([]string(nil), sigs[:4]...), sigs[0], sigs[0], sigs[1])
	if st, err := verify(dup); !errors.Is(err, ErrTooFewSignatures) || st.Good != 4 {
		t.Errorf("repeated signatures: %+v, %v", st, err)
	}
}

// testAuthority is a stranger: a directory authority with valid keys
// and certificate that is not configured.
type testAuthority struct {
	id, signing *rsa.PrivateKey
	cert        *KeyCert
}

func pemBlock(label string, der []byte) string {
	b64 := base64.StdEncoding.EncodeToString(der)
	var b strings.Builder
	b.WriteString("-----BEGIN " + label + "-----\n")
	for len(b64) > 64 {
		b.WriteString(b64[:64] + "\n")
		b64 = b64[64:]
	}
	b.WriteString(b64 + "\n-----END " + label + "-----\n")
	return b.String()
}

func signRaw(t testing.TB, k *rsa.PrivateKey, digest []byte) []byte {
	sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.Hash(0), digest)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// newTestAuthority makes keys and a dir-spec §3.1 key certificate.
func newTestAuthority(t testing.TB, published time.Time) *testAuthority {
	t.Helper()
	a := &testAuthority{}
	var err error
	if a.id, err = rsa.GenerateKey(rand.Reader, 1024); err != nil {
		t.Fatal(err)
	}
	if a.signing, err = rsa.GenerateKey(rand.Reader, 1024); err != nil {
		t.Fatal(err)
	}
	idDER := x509.MarshalPKCS1PublicKey(&a.id.PublicKey)
	fp := sha1.Sum(idDER)
	var b strings.Builder
	fmt.Fprintf(&b, "dir-key-certificate-version 3\nfingerprint %X\ndir-key-published %s\ndir-key-expires %s\n",
		fp, published.Format(timeLayout), published.AddDate(1, 0, 0).Format(timeLayout))
	b.WriteString("dir-identity-key\n" + pemBlock("RSA PUBLIC KEY", idDER))
	b.WriteString("dir-signing-key\n" + pemBlock("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&a.signing.PublicKey)))
	b.WriteString("dir-key-crosscert\n" + pemBlock("ID SIGNATURE", signRaw(t, a.signing, fp[:])))
	b.WriteString("dir-key-certification\n")
	d := sha1.Sum([]byte(b.String()))
	b.WriteString(pemBlock("SIGNATURE", signRaw(t, a.id, d[:])))
	if a.cert, err = ParseKeyCert(b.String()); err != nil {
		t.Fatal(err)
	}
	if err := a.cert.Verify(published); err != nil {
		t.Fatal(err)
	}
	return a
}

// sign returns a valid directory-signature item by a over c, claiming
// identity id (a's own unless forging).
func (a *testAuthority) sign(t testing.TB, c *Consensus, id [20]byte) string {
	return fmt.Sprintf("directory-signature sha256 %X %X\n", id, a.cert.SigningKeyDigest) +
		pemBlock("SIGNATURE", signRaw(t, a.signing, c.SHA256Digest[:]))
}

// A majority of valid signatures by strangers, or of signatures forged
// in configured authorities' names, does not make a consensus.
func TestVerifyStrangersAndForgeries(t *testing.T) {
	text, c, ids, certs := realConsensus(t)
	head, sigs := sigBlocks(t, text)
	strangers := make([]*testAuthority, 5)
	all := append([]*KeyCert(nil), certs...)
	for i := range strangers {
		strangers[i] = newTestAuthority(t, c.ValidAfter)
		all = append(all, strangers[i].cert)
	}
	check := func(name string, extra func(a *testAuthority, i int) string) {
		t.Helper()
		doc := head + strings.Join(sigs[:4], "")
		for i, a := range strangers {
			doc += extra(a, i)
		}
		c2, err := ParseConsensus(doc)
		if err != nil {
			t.Fatal(err)
		}
		if len(c2.Signatures) != 9 {
			t.Fatalf("%s: %d signatures", name, len(c2.Signatures))
		}
		st, err := c2.Verify(ids, all)
		if !errors.Is(err, ErrTooFewSignatures) || st.Good != 4 {
			t.Errorf("%s: %+v, %v; want refused with 4 good", name, st, err)
		}
		// The same signatures count once the strangers are trusted.
		trusting := append([][20]byte(nil), ids...)
		for _, a := range strangers {
			trusting = append(trusting, a.cert.Fingerprint)
		}
		if name == "strangers" {
			if st, err := c2.Verify(trusting, all); err != nil || st.Good != 9 {
				t.Errorf("strangers trusted: %+v, %v", st, err)
			}
		}
	}
	// Valid signatures by five authorities nobody configured.
	check("strangers", func(a *testAuthority, _ int) string { return a.sign(t, c, a.cert.Fingerprint) })
	// Five signatures in the names of the configured authorities that
	// did not sign above, made with the strangers' signing keys: no
	// certificate binds those keys to those identities.
	var unsigned [][20]byte
	for _, sig := range c.Signatures[4:] {
		unsigned = append(unsigned, sig.Identity)
	}
	check("forged", func(a *testAuthority, i int) string { return a.sign(t, c, unsigned[i]) })
}
