package engine

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gotor/gotor/config"
	"github.com/gotor/gotor/internal/control"
	"github.com/gotor/gotor/internal/onion/service"
)

// A service's upload events become HS_DESC events as C tor words them;
// ADD_ONION and DEL_ONION refuse what they must on an engine that is not
// started.
func TestServiceHSDescEvents(t *testing.T) {
	cfg := config.DefaultConfig()
	cfg.DataDirectory = filepath.Join(t.TempDir(), "data")
	e, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Stop()
	var lines []string
	unsub := controlBackend{e}.Subscribe(func(ev control.Event) {
		lines = append(lines, strings.TrimSpace(string(control.FormatEvent(ev))))
	})
	defer unsub()
	label := strings.Repeat("a", 56)
	on := e.serviceDescEvents(label)
	hsdir := [20]byte{0xAB, 0xCD}
	fp := "$ABCD" + strings.Repeat("0", 36)
	on(service.Event{Kind: service.EventUpload, Relay: hsdir, BlindedKey: [32]byte{1}})
	on(service.Event{Kind: service.EventUploaded, Relay: hsdir})
	on(service.Event{Kind: service.EventUploadFailed, Relay: hsdir, HSDirStatus: 400, Reason: "HSDir refused"})
	on(service.Event{Kind: service.EventUploadFailed, Relay: hsdir, Reason: "build: timeout"})
	on(service.Event{Kind: service.EventIntroEstablished, Relay: hsdir})
	want := []string{
		"650 HS_DESC UPLOAD " + label + " UNKNOWN " + fp + " AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"650 HS_DESC UPLOADED " + label + " UNKNOWN " + fp,
		"650 HS_DESC FAILED " + label + " UNKNOWN " + fp + " REASON=UPLOAD_REJECTED",
		"650 HS_DESC FAILED " + label + " UNKNOWN " + fp + " REASON=UNEXPECTED",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}

	b := controlBackend{e}
	if _, err := b.AddOnion(control.AddOnionRequest{Ports: []control.OnionPort{{Virtual: 80, Target: "127.0.0.1:80"}}}); err == nil ||
		errors.Is(err, control.ErrOnionExists) {
		t.Errorf("AddOnion before Start: %v", err)
	}
	if err := b.DelOnion(label); !errors.Is(err, control.ErrUnknownKey) {
		t.Errorf("DelOnion of no service: %v", err)
	}
}
