package socks

import (
	"bufio"
	"bytes"
	"io"
	"testing"
)

// FuzzHandshake feeds arbitrary bytes to the SOCKS parser: it must not
// panic, must not read past the handshake bound, and a parsed request
// must be self-consistent.
func FuzzHandshake(f *testing.F) {
	f.Add(hexBytes(4, 1, 0, 80, 127, 0, 0, 1, "u", 0))
	f.Add(hexBytes(4, 0xF0, 0, 80, 0, 0, 0, 1, 0, "h.test", 0))
	f.Add(hexBytes(5, 1, 0, 5, 1, 0, 3, 4, "a.io", 0, 80))
	f.Add(hexBytes(5, 2, 0, 2, 1, 9, "<torS0X>0", 1, "p", 5, 0xF1, 0, 4, make([]byte, 16), 0, 80))
	f.Add(hexBytes(5, 1, 0, 1, 0, 0, 5, 1, 0, 1, 1, 2, 3, 4, 0, 1))
	f.Add([]byte("CONNECT x:1 HTTP/1.1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, safe := range []bool{false, true} {
			lr := &limitedReader{r: bytes.NewReader(in), n: maxSOCKSHandshake}
			o := &handshakeOpts{safeSocks: safe, warnUnsafe: func(Protocol, string, uint16, bool) {}}
			req, err := readHandshake(bufio.NewReader(lr), io.Discard, o)
			if err != nil {
				if req != nil {
					t.Fatal("request with error")
				}
				continue
			}
			if req.Host == "" || (req.Port == 0 && req.Version == 4) {
				t.Fatalf("bad request %+v", req)
			}
			if safe && req.AddrType != AddrDomain && req.Command != CmdResolvePTR {
				t.Fatalf("SafeSocks let through %+v", req)
			}
			_ = socks5Reply(ReplySucceeded, parseAddrOrZero(req.Host), req.Host)
		}
	})
}
