package hscell

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

func unhex(t *testing.T, s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The INTRODUCE1 header and plaintext of rend-spec-v3 Appendix G.1
// (produced by C tor on a Chutney network).
func TestIntroduce1Vector(t *testing.T) {
	H := unhex(t, "000000000000000000000000000000000000000002002034E171E4358E501BFF21ED907E96AC6BFEF697C779D040BBAF49ACC30FC5D21F00")
	P := unhex(t, `6BD364C12638DD5C3BE23D76ACA05B04E6CE932C0101000100200DE6130E4FCA
          C4EDDA24E21220CC3EADAE403EF6B7D11C8273AC71908DE565450300067F0000
          0113890214F823C4F8CC085C792E0AEE0283FE00AD7520B37D0320728D5DF39B
          7B7077A0118A900FF4456C382F0041300ACF9C58E51C392795EF870000000000
          0000000000000000000000000000000000000000000000000000000000000000
          000000000000000000000000000000000000000000000000000000000000`)
	var ak [32]byte
	copy(ak[:], H[23:55])
	h, err := Introduce1Header(ak, nil)
	if err != nil || !bytes.Equal(h, H) {
		t.Fatalf("header %x", h)
	}
	p, err := ParseIntroducePlaintext(P)
	if err != nil {
		t.Fatal(err)
	}
	// C tor sent the congestion-control request extension (type 1).
	if len(p.Extensions) != 1 || p.Extensions[0].Type != 1 || len(p.LinkSpecs) != 3 {
		t.Fatalf("%+v", p)
	}
	s := Summarize(p.LinkSpecs)
	if s.IPv4.String() != "127.0.0.1:5001" || !s.HasRSA || !s.HasEd {
		t.Fatalf("%+v", s)
	}
	enc, err := p.Encode(len(H))
	if err != nil || !bytes.Equal(enc, P) {
		t.Fatalf("re-encode mismatch\n%x\n%x", enc, P)
	}
	body := append(append([]byte(nil), H...), []byte("encrypted-part")...)
	m, err := ParseIntroduce1(body)
	if err != nil || m.AuthKey != ak || !bytes.Equal(m.Header, H) || string(m.Encrypted) != "encrypted-part" {
		t.Fatalf("%v %+v", err, m)
	}
}

func TestSmallCells(t *testing.T) {
	var c [20]byte
	c[3] = 9
	if got, err := ParseEstablishRendezvous(append(EstablishRendezvous(c), 1, 2)); err != nil || got != c {
		t.Fatal(err)
	}
	a, err := ParseIntroduceAck(EncodeIntroduceAck(IntroAckCantRelay))
	if err != nil || a.Status != 3 || a.StatusString() == "" {
		t.Fatal(err)
	}
	if _, err := ParseIntroduceAck([]byte{0}); err == nil {
		t.Fatal("short ack")
	}
	hs := bytes.Repeat([]byte{7}, 64)
	gc, gh, err := ParseRendezvous1(Rendezvous1(c, hs))
	if err != nil || gc != c || !bytes.Equal(gh, hs) {
		t.Fatal(err)
	}
	if g, err := ParseRendezvous2(append(Rendezvous2(hs), 0, 0)); err != nil || !bytes.Equal(g, hs) {
		t.Fatal(err)
	}
	if _, err := ParseRendezvous2(hs[:63]); err == nil {
		t.Fatal("short rend2")
	}
}

func TestParsersNoPanic(t *testing.T) {
	H := make([]byte, 56)
	H[20], H[22] = 2, 32
	for n := 0; n < 300; n++ {
		b := bytes.Repeat([]byte{0xff}, n)
		ParseIntroduce1(b)
		ParseIntroduce1(append(H[:min(n, len(H))], b...))
		ParseIntroducePlaintext(b)
		ParseIntroduceAck(b)
		DecodeLinkSpecs(b)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte{1, 0, 6, 1, 2, 3, 4, 5, 6})
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseIntroduce1(b)
		ParseIntroducePlaintext(b)
		ParseIntroduceAck(b)
		if ls, err := DecodeLinkSpecs(b); err == nil {
			enc, err := EncodeLinkSpecs(ls)
			if err != nil || !bytes.Equal(enc, b) {
				t.Fatalf("link spec round trip")
			}
		}
	})
}
