package hscrypto

import (
	"bytes"
	"crypto/rand"
	"crypto/sha3"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/netdir"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func unhex32(t testing.TB, s string) (a [32]byte) {
	t.Helper()
	copy(a[:], unhex(t, s))
	return a
}

// Vector from C tor src/test/hs_build_address.py / test_hs_common.c.
const vecPub = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
const vecAddr = "25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sid"

func TestAddressVector(t *testing.T) {
	a := Address{PubKey: unhex32(t, vecPub)}
	if got := a.Label(); got != vecAddr {
		t.Fatalf("label %s", got)
	}
	for _, in := range []string{vecAddr + ".onion", strings.ToUpper(vecAddr) + ".ONION", "www." + vecAddr + ".onion", "a.b." + vecAddr + ".onion.", vecAddr + ".onion."} {
		p, err := ParseAddress(in)
		if err != nil || p != a {
			t.Errorf("%s: %v", in, err)
		}
	}
}

func TestAddressErrors(t *testing.T) {
	flip := []byte(vecAddr)
	flip[0] = 'a' // changes key → checksum mismatch
	// Build an address with version 4 but right checksum.
	var raw [35]byte
	copy(raw[:], unhex(t, vecPub))
	cs := Checksum(raw[:32], 4)
	copy(raw[32:], cs[:])
	raw[34] = 4
	v4 := strings.ToLower(b32.EncodeToString(raw[:]))
	// A torsion point: the point of order 2 (0,-1) added… use a known
	// small-order encoding (order 4 point, y = 0).
	var tor [32]byte
	torsion := Address{PubKey: tor}.Label()

	cases := []struct {
		in   string
		want error
	}{
		{"example.com", ErrNotOnion},
		{"abc.onion", ErrBadLength},
		{vecAddr[:55] + "1.onion", ErrBadEncoding},
		{string(flip) + ".onion", ErrBadChecksum},
		{v4 + ".onion", ErrBadVersion},
		{"." + vecAddr + ".onion", ErrEmptySubdomain},
		{torsion + ".onion", ErrTorsionKey},
	}
	for _, c := range cases {
		_, err := ParseAddress(c.in)
		if !errors.Is(err, c.want) {
			t.Errorf("%q: got %v want %v", c.in, err, c.want)
		}
		var ae *AddressError
		if !errors.As(err, &ae) {
			t.Errorf("%q: not AddressError", c.in)
		}
	}
}

// Vector from C tor test_hs_common.c test_build_blinded_key / arti.
func TestBlindingVector(t *testing.T) {
	pub := unhex32(t, "833990B085C1A688C1D4C8B1F6B56AFAF5A2ECA674449E1D704F83765CCB7BC6")
	h := BlindingFactor(pub[:], nil, 1234, 1440)
	if !bytes.Equal(h[:], unhex(t, "379E50DB31FEE6775ABD0AF6FB7C371E060308F4F847DB09FE4CFE13AF602287")) {
		t.Fatalf("param %x", h)
	}
	bl, err := BlindPublicKey(pub, 1234, 1440)
	if err != nil {
		t.Fatal(err)
	}
	if bl != unhex32(t, "3A50BF210E8F9EE955AE0014F7A6917FB65EBF098A86305ABB508D1A7291B6D5") {
		t.Fatalf("blinded %x", bl)
	}
	if sc := Subcredential(pub, bl); sc != unhex32(t, "635D55907816E8D76398A675A50B1C2F3E36B42A5CA77BA3A0441285161AE07D") {
		t.Fatalf("subcred %x", sc)
	}
	k, err := ExpandedFromBytes(unhex(t, "D8C7FF0E31295B66540D789AF3E3DF992038A9592EEA01D8B7CBA06D6E66D1594D6167696320576F7264733A20737065697373636F62616C742062697669756D"))
	if err != nil {
		t.Fatal(err)
	}
	if k.Public != pub {
		t.Fatalf("pub %x", k.Public)
	}
	bk, err := BlindPrivateKey(k, 1234, 1440)
	if err != nil {
		t.Fatal(err)
	}
	want := unhex(t, "A958DC83AC885F6814C67035DE817A2C604D5D2F715282079448F789B656350B4540FE1F80AA3F7E91306B7BF7A8E367293352B14A29FDCC8C19F3558075524B")
	if !bytes.Equal(bk.Scalar[:], want[:32]) || !bytes.Equal(bk.Prefix[:], want[32:]) || bk.Public != bl {
		t.Fatalf("blinded sk %x%x", bk.Scalar, bk.Prefix)
	}
}

// Vector from arti tor-netdoc hsdesc tests (a real C tor service,
// paozpdhgz2okvc6kgbxvh2bnfsmt4xergrtcl4obkhopyvwxkpjzvoad.onion).
func TestBlindingVectorArti(t *testing.T) {
	a, err := ParseAddress("paozpdhgz2okvc6kgbxvh2bnfsmt4xergrtcl4obkhopyvwxkpjzvoad.onion")
	if err != nil {
		t.Fatal(err)
	}
	if a.PubKey != unhex32(t, "781D978CE6CE9CAA8BCA306F53E82D2C993E5C91346625F1C151DCFC56D753D3") {
		t.Fatal("pubkey")
	}
	tp := DefaultSchedule.PeriodNum(time.Date(2023, 2, 9, 12, 0, 0, 0, time.UTC))
	if tp != 19397 {
		t.Fatalf("tp %d", tp)
	}
	bl, _ := BlindPublicKey(a.PubKey, tp, 1440)
	if bl != unhex32(t, "706628758208395D461AA0F460A5E76E7B828C66B5E794768592B451302E961D") {
		t.Fatalf("blinded %x", bl)
	}
	if Subcredential(a.PubKey, bl) != unhex32(t, "24A133E905102BDA9A6AFE57F901366A1B8281865A91F1FE0853E4B50CC8B070") {
		t.Fatal("subcred")
	}
}

func TestSignVerifies(t *testing.T) {
	k, _ := ExpandSeed(bytes.Repeat([]byte{7}, 32))
	bk, _ := BlindPrivateKey(k, 5, 1440)
	msg := []byte("hello")
	sig := bk.Sign(msg)
	if !verifyEd25519(bk.Public[:], msg, sig) {
		t.Fatal("blinded signature does not verify")
	}
}

// C tor test_time_period and the rend-spec §2.2.1 example.
func TestTimePeriods(t *testing.T) {
	s := DefaultSchedule
	at := func(str string) time.Time {
		tm, err := time.Parse(time.RFC3339, str)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	for _, c := range []struct {
		t string
		n uint64
	}{
		{"2016-04-13T11:00:00Z", 16903}, {"2016-04-13T11:15:01Z", 16903},
		{"2016-04-13T11:59:59Z", 16903}, {"2016-04-13T12:00:00Z", 16904},
		{"1973-05-20T01:50:33Z", 1234},
	} {
		if got := s.PeriodNum(at(c.t)); got != c.n {
			t.Errorf("%s: %d want %d", c.t, got, c.n)
		}
	}
	if !s.PeriodStart(16904).Equal(at("2016-04-13T12:00:00Z")) {
		t.Error("start")
	}
	// Client SRV choice: 13:00 is between TP and SRV (use current SRV);
	// 01:00 is between SRV and TP (use previous SRV).
	if !s.InPeriodBetweenTPAndSRV(at("2016-04-13T13:00:00Z")) {
		t.Error("13:00 should be TP->SRV")
	}
	if s.InPeriodBetweenTPAndSRV(at("2016-04-14T01:00:00Z")) {
		t.Error("01:00 should be SRV->TP")
	}
	if s.InPeriodBetweenTPAndSRV(at("2016-04-14T00:00:00Z")) {
		t.Error("00:00 should be SRV->TP")
	}
	if !s.InPeriodBetweenTPAndSRV(at("2016-04-14T12:00:00Z")) {
		t.Error("12:00 should be TP->SRV")
	}
	// TestingTorNetwork with a 20-second voting interval: period = 24*20 s
	// = 8 minutes, offset 240 s.
	nd := &netdir.NetDir{ValidAfter: at("2016-04-13T11:00:00Z"), FreshUntil: at("2016-04-13T11:00:20Z")}
	ts := ScheduleFor(nd, true)
	if ts.PeriodLength != 8 || ts.RotationOffset() != 240*time.Second {
		t.Fatalf("testing schedule %+v", ts)
	}
	nd.Params = map[string]int32{"hsdir_interval": 60}
	if ScheduleFor(nd, false).PeriodLength != 60 {
		t.Error("hsdir_interval param ignored")
	}
}

// C tor test_hs_indexes (src/test/hs_indexes.py) and test_disaster_srv.
func TestIndexes(t *testing.T) {
	var k [32]byte
	for i := range k {
		k[i] = 0x42
	}
	if got := HSIndex(k, 1, 1440, 42); got != unhex32(t, "37e5cbbd56a22823714f18f1623ece5983a0d64c78495a8cfab854245e5f9a8a") {
		t.Errorf("hs_index %x", got)
	}
	if got := HSDirIndex(k, bytes.Repeat([]byte{0x43}, 32), 42, 1440); got != unhex32(t, "db475361014a09965e7e5e4d4a25b8f8d4b8f16cb1d8a7e95eed50249cc1a2d5") {
		t.Errorf("hsdir_index %x", got)
	}
	want := sha3.Sum256([]byte("shared-random-disaster\x00\x00\x00\x00\x00\x00\x05\xA0\x00\x00\x00\x00\x00\x00\x00\x01"))
	if DisasterSRV(1440, 1) != want {
		t.Error("disaster srv")
	}
}

func TestResponsibleHSDirs(t *testing.T) {
	va := time.Date(2016, 4, 13, 13, 0, 0, 0, time.UTC)
	nd := &netdir.NetDir{ValidAfter: va, FreshUntil: va.Add(time.Hour)}
	for i := 0; i < 20; i++ {
		r := &netdir.Relay{Nickname: fmt.Sprint("r", i), HasEd25519: true, HasMicrodesc: true,
			Flags: netdir.FlagHSDir | netdir.FlagRunning | netdir.FlagValid, Protocols: "HSDir=1-2 Link=1-5"}
		r.Ed25519ID[0] = byte(i)
		r.Ed25519ID[1] = 0x99
		if i == 3 {
			r.Flags &^= netdir.FlagHSDir
		}
		if i == 4 {
			r.Protocols = "HSDir=1"
		}
		nd.Relays = append(nd.Relays, r)
	}
	p := ClientFetchParams(nd, DefaultSchedule)
	if !p.Disaster || p.PeriodNum != 16904 || p.SRV != DisasterSRV(1440, 16904) {
		t.Fatalf("params %+v", p)
	}
	var blinded [32]byte
	blinded[5] = 1
	got := ResponsibleHSDirs(nd, blinded, p)
	if len(got) != 6 {
		t.Fatalf("got %d", len(got))
	}
	// Reference: brute-force per spec.
	seen := map[*netdir.Relay]bool{}
	for _, r := range got {
		if seen[r] || r.Nickname == "r3" || r.Nickname == "r4" {
			t.Fatalf("bad pick %s", r.Nickname)
		}
		seen[r] = true
	}
	for rep := 1; rep <= 2; rep++ {
		idx := HSIndex(blinded, uint64(rep), 1440, 16904)
		// The first relay chosen for this replica must be the one with the
		// smallest hsdir_index >= idx (cyclically) that was not already chosen.
		first := got[(rep-1)*3]
		fi := HSDirIndex(first.Ed25519ID, p.SRV[:], 16904, 1440)
		for _, r := range nd.Relays {
			if !SupportsHSDirV3(r) || r == first {
				continue
			}
			ri := HSDirIndex(r.Ed25519ID, p.SRV[:], 16904, 1440)
			if rep == 1 && dist(idx, ri) < dist(idx, fi) {
				t.Errorf("replica %d: %s closer than %s", rep, r.Nickname, first.Nickname)
			}
		}
	}
	// With a published SRV and in TP->SRV segment, current SRV is used.
	nd.SharedRandCurrent = bytes.Repeat([]byte{1}, 32)
	nd.SharedRandPrevious = bytes.Repeat([]byte{2}, 32)
	if p := ClientFetchParams(nd, DefaultSchedule); p.SRV[0] != 1 || p.Disaster {
		t.Error("want current SRV")
	}
	nd.ValidAfter = time.Date(2016, 4, 14, 1, 0, 0, 0, time.UTC)
	nd.FreshUntil = nd.ValidAfter.Add(time.Hour)
	if p := ClientFetchParams(nd, DefaultSchedule); p.SRV[0] != 2 {
		t.Error("want previous SRV")
	}
}

// dist is (b - a) mod 2^256 compared lexicographically via big-endian
// subtraction; enough for ordering tests.
func dist(a, b [32]byte) string {
	var out [32]byte
	borrow := 0
	for i := 31; i >= 0; i-- {
		d := int(b[i]) - int(a[i]) - borrow
		borrow = 0
		if d < 0 {
			d += 256
			borrow = 1
		}
		out[i] = byte(d)
	}
	return string(out[:])
}

// rend-spec-v3 Appendix G.1 hs-ntor vectors.
func TestHSNtorVector(t *testing.T) {
	authKey := unhex32(t, "34E171E4358E501BFF21ED907E96AC6BFEF697C779D040BBAF49ACC30FC5D21F")
	B := unhex32(t, "8E5127A40E83AABF6493E41F142B6EE3604B85A3961CD7E38D247239AFF71979")
	b := unhex32(t, "A0ED5DBF94EEB2EDB3B514E4CF6ABFF6022051CC5F103391F1970A3FCD15296A")
	subcred := unhex32(t, "0085D26A9DEBA252263BF0231AEAC59B17CA11BAD8A218238AD6487CBAD68B57")
	H := unhex(t, "000000000000000000000000000000000000000002002034E171E4358E501BFF21ED907E96AC6BFEF697C779D040BBAF49ACC30FC5D21F00")
	P := unhex(t, `6BD364C12638DD5C3BE23D76ACA05B04E6CE932C0101000100200DE6130E4FCA
          C4EDDA24E21220CC3EADAE403EF6B7D11C8273AC71908DE565450300067F0000
          0113890214F823C4F8CC085C792E0AEE0283FE00AD7520B37D0320728D5DF39B
          7B7077A0118A900FF4456C382F0041300ACF9C58E51C392795EF870000000000
          0000000000000000000000000000000000000000000000000000000000000000
          000000000000000000000000000000000000000000000000000000000000`)
	x := unhex32(t, "60B4D6BF5234DCF87A4E9D7487BDF3F4A69B6729835E825CA29089CFDDA1E341")
	body := unhex(t, `000000000000000000000000000000000000000002002034E171E4358E501BFF
      21ED907E96AC6BFEF697C779D040BBAF49ACC30FC5D21F00BF04348B46D09AED
      726F1D66C618FDEA1DE58E8CB8B89738D7356A0C59111D5DADBECCCB38E37830
      4DCC179D3D9E437B452AF5702CED2CCFEC085BC02C4C175FA446525C1B9D5530
      563C362FDFFB802DAB8CD9EBC7A5EE17DA62E37DEEB0EB187FBB48C63298B0E8
      3F391B7566F42ADC97C46BA7588278273A44CE96BC68FFDAE31EF5F0913B9A9C
      7E0F173DBC0BDDCD4ACB4C4600980A7DDD9EAEC6E7F3FA3FC37CD95E5B8BFB3E
      35717012B78B4930569F895CB349A07538E42309C993223AEA77EF8AEA64F25D
      DEE97DA623F1AEC0A47F150002150455845C385E5606E41A9A199E7111D54EF2
      D1A51B7554D8B3692D85AC587FB9E69DF990EFB776D8`)
	c, err := NewClientHandshakeWithKey(x, authKey, B, subcred)
	if err != nil {
		t.Fatal(err)
	}
	if c.PublicKey() != unhex32(t, "BF04348B46D09AED726F1D66C618FDEA1DE58E8CB8B89738D7356A0C59111D5D") {
		t.Fatal("X")
	}
	enc, mk := c.IntroKeys()
	if !bytes.Equal(enc, unhex(t, "9B8917BA3D05F3130DACCE5300C3DC27F6D012912F1C733036F822D0ED238706")) ||
		!bytes.Equal(mk, unhex(t, "FC4058DA59D4DF61E7B40985D122F502FD59336BC21C30CAF5E7F0D4A2C38FD5")) {
		t.Fatalf("intro keys %x %x", enc, mk)
	}
	got := append(append([]byte(nil), H...), c.EncryptIntro(H, P)...)
	if !bytes.Equal(got, body) {
		t.Fatalf("INTRODUCE1 body mismatch\n got %x\nwant %x", got, body)
	}
	y := unhex32(t, "68CB5188CA0CD7924250404FAB54EE1392D3D2B9C049A2E446513875952F8F55")
	pt, hsInfo, seed, err := ServiceIntro(b, B, authKey, subcred, H, body[len(H):], y)
	if err != nil || !bytes.Equal(pt, P) {
		t.Fatalf("service decrypt: %v", err)
	}
	wantInfo := unhex(t, "8FBE0DB4D4A9C7FF46701E3E0EE7FD05CD28BE4F302460ADDEEC9E93354EE700"+
		"4A92E8437B8424D5E5EC279245D5C72B25A0327ACF6DAF902079FCB643D8B208")
	wantSeed := unhex32(t, "4D0C72FE8AFF35559D95ECC18EB5A36883402B28CDFD48C8A530A5A3D7D578DB")
	if !bytes.Equal(hsInfo, wantInfo) || seed != wantSeed {
		t.Fatalf("service handshake %x %x", hsInfo, seed)
	}
	cseed, err := c.Complete(wantInfo)
	if err != nil || cseed != wantSeed {
		t.Fatalf("client complete %v %x", err, cseed)
	}
	bad := append([]byte(nil), wantInfo...)
	bad[40] ^= 1
	if _, err := c.Complete(bad); !errors.Is(err, ErrBadHandshake) {
		t.Fatal("bad AUTH accepted")
	}
	if _, err := c.Complete(wantInfo[:40]); err == nil {
		t.Fatal("short accepted")
	}
	keys := ExpandRendKeys(seed[:])
	k := KDF(128, seed[:], []byte(mHSExpand))
	if !bytes.Equal(keys.Df[:], k[:32]) || !bytes.Equal(keys.Kb[:], k[96:]) {
		t.Fatal("expand")
	}
}

func TestDescLayerRoundTrip(t *testing.T) {
	var sub [32]byte
	rand.Read(sub[:])
	salt := make([]byte, 16)
	pt := []byte("hello world")
	blob := EncryptDescLayer(pt, salt, []byte("secret"), sub, 7, EncryptedConstant)
	out, err := DecryptDescLayer(blob, []byte("secret"), sub, 7, EncryptedConstant)
	if err != nil || !bytes.Equal(out, pt) {
		t.Fatal(err)
	}
	if _, err := DecryptDescLayer(blob, []byte("secret"), sub, 8, EncryptedConstant); !errors.Is(err, ErrDescMAC) {
		t.Fatal("wrong revision accepted")
	}
	if _, err := DecryptDescLayer(blob[:20], nil, sub, 7, ""); err == nil {
		t.Fatal("short accepted")
	}
}

func FuzzParseAddress(f *testing.F) {
	f.Add(vecAddr + ".onion")
	f.Add("www." + vecAddr + ".onion.")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddress(s)
		if err != nil {
			return
		}
		b, err := ParseAddress(a.String())
		if err != nil || a != b {
			t.Fatalf("round trip of %q: %v", s, err)
		}
	})
}

func BenchmarkResponsibleHSDirs7000(b *testing.B) {
	va := time.Date(2026, 1, 1, 13, 0, 0, 0, time.UTC)
	nd := &netdir.NetDir{ValidAfter: va, FreshUntil: va.Add(time.Hour), SharedRandCurrent: make([]byte, 32), SharedRandPrevious: make([]byte, 32)}
	for i := 0; i < 7000; i++ {
		r := &netdir.Relay{HasEd25519: true, Flags: netdir.FlagHSDir}
		rand.Read(r.Ed25519ID[:])
		nd.Relays = append(nd.Relays, r)
	}
	p := ClientFetchParams(nd, DefaultSchedule)
	var blinded [32]byte
	b.ReportAllocs()
	b.Run("build", func(b *testing.B) {
		for b.Loop() {
			NewRing(nd, p)
		}
	})
	rg := NewRing(nd, p)
	b.Run("lookup", func(b *testing.B) {
		for b.Loop() {
			if len(rg.Responsible(blinded)) != 6 {
				b.Fatal("want 6")
			}
		}
	})
}

func TestBlindingCTorVectors(t *testing.T) {
	for i, v := range ctorBlindVectors {
		k, err := ExpandedFromBytes(unhex(t, v.esk))
		if err != nil {
			t.Fatal(err)
		}
		if k.Public != unhex32(t, v.pk) {
			t.Fatalf("%d: public key", i)
		}
		param := unhex32(t, v.param)
		bp, err := BlindPublicKeyWithParam(k.Public, param)
		if err != nil || bp != unhex32(t, v.bpk) {
			t.Errorf("%d: blinded public %x", i, bp)
		}
		bk, err := BlindPrivateKeyWithParam(k, param)
		want := unhex(t, v.besk)
		if err != nil || !bytes.Equal(bk.Scalar[:], want[:32]) || !bytes.Equal(bk.Prefix[:], want[32:]) || bk.Public != bp {
			t.Errorf("%d: blinded secret %x%x", i, bk.Scalar, bk.Prefix)
		}
	}
}
