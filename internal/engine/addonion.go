package engine

// Onion services for controllers (control-spec §3.27 ADD_ONION, §3.28
// DEL_ONION, §4.1.25 HS_DESC for uploads): the backend side of
// control.OnionHoster, and the HS_DESC events of every hosted service. A service added
// here is an ordinary hosted service (hosting.go) marked ephemeral, as C
// tor's hs_service_add_ephemeral: its key lives in memory only, and only
// DEL_ONION (or the control connection that owns it closing, which the
// control server turns into DEL_ONION) or Stop ends it. Which connection
// owns it is the control server's business.

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"time"

	"github.com/gotor/gotor/internal/control"
	"github.com/gotor/gotor/internal/netdir"
	"github.com/gotor/gotor/internal/onion/service"
)

// addOnionTimeout bounds ListenOnion for ADD_ONION; the service starts
// in the background, so this is only the checks and the first step.
const addOnionTimeout = 10 * time.Second

// AddOnion starts an ephemeral service (C tor's hs_service_add_ephemeral).
func (b controlBackend) AddOnion(req control.AddOnionRequest) (control.AddedOnion, error) {
	c := b.c
	var id *service.Identity
	var err error
	if req.Key != nil {
		if id, err = service.IdentityFromExpanded(req.Key[:]); err != nil {
			return control.AddedOnion{}, control.Error(control.ErrBadOnionKey, err.Error())
		}
	} else if id, err = service.GenerateIdentity(nil); err != nil {
		return control.AddedOnion{}, err
	}
	cfg := service.Config{
		Identity:               id,
		MaxStreams:             req.MaxStreams,
		MaxStreamsCloseCircuit: req.MaxStreamsCloseCircuit,
		AuthorizedClients:      req.ClientAuthV3,
	}
	for _, p := range req.Ports {
		cfg.Ports = append(cfg.Ports, service.Port{Virtual: p.Virtual, Target: p.Target})
	}
	ctx, cancel := context.WithTimeout(context.Background(), addOnionTimeout)
	defer cancel()
	s, err := c.ListenOnion(ctx, cfg)
	if errors.Is(err, ErrOnionExists) {
		return control.AddedOnion{}, control.Error(control.ErrOnionExists, err.Error())
	}
	if err != nil {
		return control.AddedOnion{}, err
	}
	c.mu.Lock()
	s.ephemeral = true
	c.mu.Unlock()
	c.log.Info("onion service added by a controller", "address", s.OnionAddress().Label()[:8])
	return control.AddedOnion{ServiceID: s.OnionAddress().Label(), Key: id.Expanded()}, nil
}

// DelOnion stops an ephemeral service; services of the torrc or the Go
// API are not the controller's to remove (ErrUnknownKey, as C tor's
// hs_service_del_ephemeral refuses a non-ephemeral one).
func (b controlBackend) DelOnion(serviceID string) error {
	c := b.c
	c.mu.Lock()
	s := c.hosting(serviceID + ".onion")
	if s != nil && !s.ephemeral {
		s = nil
	}
	c.mu.Unlock()
	if s == nil {
		return control.ErrUnknownKey
	}
	return s.Close()
}

// serviceDescEvents returns a service's OnEvent: its descriptor uploads
// as HS_DESC events, worded as C tor's control_event_hs_descriptor_upload
// and control_event_hs_descriptor_upload_end: "UPLOAD addr UNKNOWN hsdir
// blinded-key", "UPLOADED addr UNKNOWN hsdir", "FAILED addr UNKNOWN hsdir
// REASON=UPLOAD_REJECTED" for an HSDir's 400 (C tor's
// handle_response_upload_hsdesc), UNEXPECTED for any other failure.
func (c *Engine) serviceDescEvents(label string) func(service.Event) {
	return func(e service.Event) {
		ev := &control.HSDescEvent{Address: label, AuthType: "UNKNOWN", HSDir: c.relayHop(e.Relay)}
		switch e.Kind {
		case service.EventUpload:
			ev.Action = "UPLOAD"
			ev.DescID = base64.RawStdEncoding.EncodeToString(e.BlindedKey[:])
		case service.EventUploaded:
			ev.Action = "UPLOADED"
		case service.EventUploadFailed:
			ev.Action, ev.Reason = "FAILED", "UNEXPECTED"
			if e.HSDirStatus == http.StatusBadRequest {
				ev.Reason = "UPLOAD_REJECTED"
			}
		default:
			return
		}
		c.obs.publish(control.Event{Type: control.EventHSDesc, HSDesc: ev})
	}
}

// relayHop names a relay by its RSA identity, with its nickname when the
// consensus lists it (C tor's node_describe_longname_by_id).
func (c *Engine) relayHop(id [20]byte) control.Hop {
	if dir := c.dir.NetDir(); dir != nil {
		if r := dir.ByRSAID[id]; r != nil {
			return hops([]*netdir.Relay{r})[0]
		}
	}
	return hops([]*netdir.Relay{{RSAID: id}})[0]
}
