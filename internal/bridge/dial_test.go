package bridge

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/gotor/gotor/internal/pt"
)

// An in-process transport gets the bridge's address and arguments; a
// refused dial names the bridge; an unknown transport is refused when
// the dialer is made.
func TestInProcessTransport(t *testing.T) {
	line, _ := ParseLine("mytransport 192.0.2.9:443 D9A82D2F9C2F65A18407B1D2B764F130847F8B5D secret=s3 mode=1")
	var gotAddr string
	var gotArgs pt.Args
	refused := errors.New("refused by the test transport")
	tr := WithFuncs(map[string]TransportFunc{
		"mytransport": func(ctx context.Context, addr string, args pt.Args) (net.Conn, error) {
			gotAddr, gotArgs = addr, args
			return nil, refused
		},
	}, pt.NewManager([]pt.Plugin{{Transports: []string{"obfs4"}, Path: "/nonexistent"}}, pt.Config{}))
	if !tr.Has("mytransport") || !tr.Has("obfs4") || tr.Has("snowflake") {
		t.Error("Has")
	}
	d, err := NewDialer([]Line{line}, tr, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.Dial(context.Background(), line)
	var be *Error
	if !errors.Is(err, refused) || !errors.As(err, &be) || !strings.Contains(err.Error(), "$D9A82D2F9C2F65A18407B1D2B764F130847F8B5D (mytransport)") {
		t.Errorf("Dial: %v", err)
	}
	if gotAddr != "192.0.2.9:443" || gotArgs.String() != "secret=s3 mode=1" {
		t.Errorf("transport got %q %q", gotAddr, gotArgs)
	}
	other, _ := ParseLine("snowflake 192.0.2.3:80")
	if _, err := NewDialer([]Line{other}, tr, nil); err == nil || !strings.Contains(err.Error(), "no ClientTransportPlugin line provides transport snowflake") {
		t.Errorf("unknown transport: %v", err)
	}
	if _, err := NewDialer([]Line{line, line}, tr, nil); err == nil || !strings.Contains(err.Error(), "same address") {
		t.Errorf("duplicate: %v", err)
	}
	if _, err := WithFuncs(nil, nil).Dial(context.Background(), "x", "192.0.2.1:1", nil); err == nil {
		t.Error("no transports: dial succeeded")
	}
}
