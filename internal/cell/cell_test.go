package cell

import (
	"bytes"
	"net/netip"
	"testing"
	"time"
)

func TestFixedCellRoundTrip(t *testing.T) {
	c := &Cell{CircID: 0x80000001, Command: CREATE2, Payload: []byte{1, 2, 3}}
	b, err := c.Encode(4)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != CellLen {
		t.Fatalf("len %d", len(b))
	}
	d, n, err := Decode(b, 4)
	if err != nil || n != CellLen || d.CircID != c.CircID || d.Command != CREATE2 || len(d.Payload) != PayloadLen || !bytes.Equal(d.Payload[:3], []byte{1, 2, 3}) {
		t.Fatalf("decode: %v %d %+v", err, n, d)
	}
	r, err := Read(bytes.NewReader(b), 4)
	if err != nil || !bytes.Equal(r.Payload, d.Payload) {
		t.Fatal(err)
	}
	if _, _, err := Decode(b[:100], 4); err != ErrTruncated {
		t.Fatal(err)
	}
}

func TestVersionsCell(t *testing.T) {
	c := &Cell{Command: VERSIONS, Payload: EncodeVersions([]uint16{4, 5})}
	b, _ := c.Encode(2)
	want := []byte{0, 0, 7, 0, 4, 0, 4, 0, 5}
	if !bytes.Equal(b, want) {
		t.Fatalf("%x", b)
	}
	r, err := Read(bytes.NewReader(b), 2)
	if err != nil {
		t.Fatal(err)
	}
	v, err := DecodeVersions(r.Payload)
	if err != nil || len(v) != 2 || v[1] != 5 {
		t.Fatal(v, err)
	}
	if _, err := DecodeVersions([]byte{1}); err == nil {
		t.Fatal("odd accepted")
	}
}

func TestNetinfo(t *testing.T) {
	n := &Netinfo{Time: time.Unix(1700000000, 0), OtherAddr: netip.MustParseAddr("127.0.0.1"),
		MyAddrs: []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("::1")}}
	p := n.Encode()
	d, err := DecodeNetinfo(append(p, make([]byte, 100)...))
	if err != nil || !d.Time.Equal(n.Time) || d.OtherAddr != n.OtherAddr || len(d.MyAddrs) != 2 || d.MyAddrs[1] != n.MyAddrs[1] {
		t.Fatalf("%+v %v", d, err)
	}
	if _, err := DecodeNetinfo(p[:6]); err == nil {
		t.Fatal("truncated accepted")
	}
}

func TestCerts(t *testing.T) {
	in := []CertEntry{{Type: 2, Body: []byte("abc")}, {Type: 7, Body: []byte("defg")}}
	p, err := EncodeCerts(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := DecodeCerts(p)
	if err != nil || len(out) != 2 || out[1].Type != 7 || string(out[1].Body) != "defg" {
		t.Fatal(out, err)
	}
	if _, err := DecodeCerts(p[:len(p)-1]); err == nil {
		t.Fatal("truncated accepted")
	}
}

func TestAuthChallenge(t *testing.T) {
	p := append(make([]byte, 32), 0, 2, 0, 1, 0, 3)
	a, err := DecodeAuthChallenge(p)
	if err != nil || len(a.Methods) != 2 || a.Methods[1] != 3 {
		t.Fatal(a, err)
	}
	if _, err := DecodeAuthChallenge(p[:35]); err == nil {
		t.Fatal("truncated accepted")
	}
}

func TestCreate2Extend2(t *testing.T) {
	c := &Create2{HType: HandshakeNtor, HData: bytes.Repeat([]byte{9}, 84)}
	p, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	d, err := DecodeCreate2(p)
	if err != nil || d.HType != 2 || !bytes.Equal(d.HData, c.HData) {
		t.Fatal(err)
	}
	e := &Extend2{Specs: []LinkSpec{
		LinkSpecAddr(netip.MustParseAddrPort("127.0.0.1:5000")),
		LinkSpecRSAID([20]byte{1}),
		LinkSpecEd25519ID([32]byte{2}),
	}, Create: *c}
	p, err = e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	de, err := DecodeExtend2(p)
	if err != nil || len(de.Specs) != 3 || de.Create.HType != 2 {
		t.Fatal(err)
	}
	if ap, ok := de.Specs[0].AddrPort(); !ok || ap.String() != "127.0.0.1:5000" {
		t.Fatal(ap)
	}
	bad := &Extend2{Specs: []LinkSpec{{Type: LinkSpecLegacyID, Data: []byte{1}}}}
	if _, err := bad.Encode(); err == nil {
		t.Fatal("bad link spec accepted")
	}
	cr, _ := EncodeCreated2([]byte{1, 2, 3})
	h, err := DecodeCreated2(cr)
	if err != nil || len(h) != 3 {
		t.Fatal(err)
	}
	if _, err := DecodeCreated2([]byte{0, 5, 1}); err == nil {
		t.Fatal("truncated accepted")
	}
}

func TestRelay(t *testing.T) {
	var p [PayloadLen]byte
	if err := EncodeRelay(&p, RelayMsg{Command: RELAY_DATA, StreamID: 7, Data: []byte("hello")}); err != nil {
		t.Fatal(err)
	}
	r, err := DecodeRelay(p[:])
	if err != nil || r.Command != RELAY_DATA || r.StreamID != 7 || string(r.Data) != "hello" {
		t.Fatal(r, err)
	}
	if !bytes.Equal(p[RelayHeaderLen+5:RelayHeaderLen+9], []byte{0, 0, 0, 0}) {
		t.Fatal("padding prefix not zero")
	}
	if err := EncodeRelay(&p, RelayMsg{Data: make([]byte, 499)}); err == nil {
		t.Fatal("oversize accepted")
	}
	p[9], p[10] = 0x01, 0xf3 // 499
	if _, err := DecodeRelay(p[:]); err == nil {
		t.Fatal("bad length accepted")
	}
}

func TestBegin(t *testing.T) {
	for _, tc := range []struct {
		b    Begin
		want string
	}{
		{Begin{Host: "example.com", Port: 80}, "example.com:80\x00"},
		{Begin{Host: "::1", Port: 443, Flags: BeginIPv6OK}, "[::1]:443\x00\x00\x00\x00\x01"},
		{Begin{Port: 80}, ":80\x00"},
	} {
		p, err := tc.b.Encode()
		if err != nil || string(p) != tc.want {
			t.Fatalf("%q %v", p, err)
		}
		d, err := DecodeBegin(p)
		if err != nil || *d != tc.b {
			t.Fatal(d, err)
		}
	}
}

func TestConnectedEndResolvedSendme(t *testing.T) {
	for _, a := range []string{"1.2.3.4", "2001:db8::1"} {
		c := &Connected{Addr: netip.MustParseAddr(a), TTL: 300}
		d, err := DecodeConnected(c.Encode())
		if err != nil || *d != *c {
			t.Fatal(d, err)
		}
	}
	if c, err := DecodeConnected(nil); err != nil || c.Addr.IsValid() {
		t.Fatal(err)
	}
	e, _ := DecodeEnd([]byte{4, 1, 2, 3, 4, 0, 0, 0, 60})
	if e.Reason != EndExitPolicy || e.Addr.String() != "1.2.3.4" || e.TTL != 60 {
		t.Fatal(e)
	}
	if e, _ := DecodeEnd(nil); e.Reason != EndMisc {
		t.Fatal(e)
	}
	ans := []ResolvedAnswer{{Type: AddrTypeIPv4, Addr: netip.MustParseAddr("1.2.3.4"), TTL: 5},
		{Type: AddrTypeHostname, Hostname: "x.example", TTL: 6}}
	p, _ := EncodeResolved(ans)
	got, err := DecodeResolved(p)
	if err != nil || len(got) != 2 || got[0] != ans[0] || got[1] != ans[1] {
		t.Fatal(got, err)
	}
	s := &Sendme{Version: 1, Digest: bytes.Repeat([]byte{7}, 20)}
	ds, err := DecodeSendme(s.Encode())
	if err != nil || ds.Version != 1 || !bytes.Equal(ds.Digest, s.Digest) {
		t.Fatal(err)
	}
	if ds, err := DecodeSendme(nil); err != nil || ds.Version != 0 {
		t.Fatal(err)
	}
	if _, err := DecodeSendme([]byte{1, 0, 3, 1, 2, 3}); err == nil {
		t.Fatal("short v1 accepted")
	}
}

func TestExtensionsAndXon(t *testing.T) {
	b, _ := EncodeExtensions([]Extension{{Type: ExtCCRequest}})
	if !bytes.Equal(b, []byte{1, 1, 0}) {
		t.Fatalf("%x", b)
	}
	e, err := DecodeExtensions([]byte{2, 2, 1, 31, 9, 0})
	if err != nil || len(e) != 2 || e[0].Type != ExtCCResponse || e[0].Data[0] != 31 || e[1].Type != 9 {
		t.Fatal(e, err)
	}
	if _, err := DecodeExtensions([]byte{1, 2, 5}); err == nil {
		t.Fatal("truncated accepted")
	}
	x, err := DecodeXon((&Xon{KBpsEWMA: 77}).Encode())
	if err != nil || x.KBpsEWMA != 77 {
		t.Fatal(err)
	}
	if DecodeXoff(EncodeXoff()) != nil || DecodeXoff([]byte{1}) == nil {
		t.Fatal("xoff")
	}
}

// FuzzDecode feeds arbitrary bytes to every decoder; none may panic.
func FuzzDecode(f *testing.F) {
	c := &Cell{CircID: 5, Command: NETINFO, Payload: (&Netinfo{}).Encode()}
	b, _ := c.Encode(4)
	f.Add(b)
	f.Add([]byte{0, 0, 0, 0, 129, 0, 3, 1, 2, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, l := range []int{2, 4} {
			c, _, err := Decode(data, l)
			if err == nil {
				_, _ = Read(bytes.NewReader(data), l)
				if _, err := c.Encode(l); err != nil && !c.Command.IsVariable() {
					t.Fatal(err)
				}
			}
		}
		DecodeVersions(data)
		DecodeCerts(data)
		DecodeAuthChallenge(data)
		DecodeNetinfo(data)
		DecodePaddingNegotiate(data)
		DecodeCreate2(data)
		DecodeCreated2(data)
		DecodeCreatedFast(data)
		DecodeExtend2(data)
		DecodeBegin(data)
		DecodeConnected(data)
		DecodeEnd(data)
		DecodeResolved(data)
		DecodeSendme(data)
		DecodeExtensions(data)
		DecodeXon(data)
		if len(data) >= PayloadLen {
			DecodeRelay(data[:PayloadLen])
		}
	})
}
