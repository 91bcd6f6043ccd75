package service

// Descriptor uploads: rend-spec-v3 §2.2.2 [WHEN-HSDESC] (re-upload every
// 60 to 120 minutes, C tor HS_SERVICE_NEXT_UPLOAD_TIME_MIN/MAX), §2.2.3
// [WHERE-HSDESC] (hsdir_spread_store HSDirs per replica), §2.2.6 (HTTP
// POST to /tor/hs/3/publish over BEGIN_DIR on an anonymous circuit).
// As C tor's run_upload_descriptor_event: nothing is uploaded until every
// intro point is established; a changed set of intro points uploads to
// all HSDirs at once; a changed hash ring (new consensus, HSDirs come and
// go) uploads to the HSDirs that do not have the descriptor yet. Unlike
// C tor, an HSDir whose upload failed is retried after uploadRetry
// instead of at the next full re-upload.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/gotor/gotor/internal/circuit"
	"github.com/gotor/gotor/internal/netdir"
)

const (
	uploadIntervalMin = 60 * time.Minute
	uploadIntervalMax = 120 * time.Minute
	uploadRetry       = 30 * time.Second
	// PublishPath is where HSDirs take v3 descriptors (rend-spec §2.2.6).
	PublishPath = "/tor/hs/3/publish"
	// maxDirResponse bounds what we read of an HSDir's answer.
	maxDirResponse = 64 << 10
)

// introsReady reports whether descriptors may be uploaded: there are
// intro points and each has its circuit established. Under s.mu.
func (s *Service) introsReady() bool {
	if len(s.intros) == 0 {
		return false
	}
	for _, ip := range s.intros {
		if !ip.established {
			return false
		}
	}
	return true
}

// startUploads starts the uploads each descriptor needs now. Under s.mu.
func (s *Service) startUploads(ctx context.Context, dir *netdir.NetDir, now time.Time) {
	if !s.introsReady() {
		return
	}
	for _, d := range s.descs {
		if d.inFlight > 0 {
			continue
		}
		hsdirs := d.hsdirs(dir)
		var targets []*netdir.Relay
		if d.version != s.introVersion || !now.Before(d.nextUpload) {
			targets = hsdirs
			d.version = s.introVersion
			clear(d.accepted)
			clear(d.failed)
			d.nextUpload = now.Add(uploadIntervalMin + randDuration(uploadIntervalMax-uploadIntervalMin))
		} else {
			for _, h := range hsdirs {
				if t, failed := d.failed[h.RSAID]; !d.accepted[h.RSAID] && (!failed || now.Sub(t) >= uploadRetry) {
					targets = append(targets, h)
				}
			}
		}
		if len(targets) == 0 {
			continue
		}
		doc, err := s.document(d, now)
		if err != nil {
			s.log.Warn("onion service: cannot build descriptor", "err", err)
			continue
		}
		s.log.Debug("onion service: uploading descriptor", "period", d.params.Ring.PeriodNum, "second", d.second,
			"hsdirs", len(targets), "intro_points", len(s.intros))
		version := d.version
		for _, h := range targets {
			d.inFlight++
			if !s.goFn(func() { s.upload(ctx, d, version, h, doc) }) {
				d.inFlight--
			}
		}
	}
}

// upload posts doc to one HSDir and records the outcome.
func (s *Service) upload(ctx context.Context, d *periodDesc, version int, hsdir *netdir.Relay, doc []byte) {
	blinded := d.blinded.Public
	s.emit(Event{Kind: EventUpload, Relay: hsdir.RSAID, BlindedKey: blinded})
	err := s.post(ctx, hsdir, doc)
	s.mu.Lock()
	d.inFlight--
	if d.version == version {
		if err == nil {
			d.accepted[hsdir.RSAID] = true
			delete(d.failed, hsdir.RSAID)
		} else {
			d.failed[hsdir.RSAID] = s.cfg.Now()
		}
	}
	s.checkPublished()
	s.mu.Unlock()
	if err != nil {
		s.stats.uploadsFailed.Add(1)
		s.log.Debug("onion service: descriptor upload failed", "hsdir", hsdir.Nickname, "err", err)
		ev := Event{Kind: EventUploadFailed, Relay: hsdir.RSAID, BlindedKey: blinded, Reason: err.Error()}
		if he := (*HSDirError)(nil); errors.As(err, &he) {
			ev.HSDirStatus = he.Status
		}
		s.emit(ev)
	} else {
		s.stats.uploadsSucceeded.Add(1)
		s.emit(Event{Kind: EventUploaded, Relay: hsdir.RSAID, BlindedKey: blinded})
	}
	s.wakeup()
}

// checkPublished closes Published once every descriptor is on at least
// one HSDir. Under s.mu.
func (s *Service) checkPublished() {
	if s.publishedSet || len(s.descs) < 2 {
		return
	}
	for _, d := range s.descs {
		if len(d.accepted) == 0 {
			return
		}
	}
	s.publishedSet = true
	close(s.published)
	s.log.Info("onion service: descriptors published")
}

// HSDirError is an HSDir's refusal of an upload.
type HSDirError struct {
	Status int
	Msg    string
}

func (e *HSDirError) Error() string {
	return fmt.Sprintf("HSDir refused the descriptor: %d %s", e.Status, e.Msg)
}

func (s *Service) post(ctx context.Context, hsdir *netdir.Relay, doc []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.UploadTimeout)
	defer cancel()
	c, err := s.build(ctx, CircuitRequest{Purpose: PurposeHSDirPost, Hops: ServiceCircuitHops,
		Last: circuit.TargetFromRelay(hsdir), Relay: hsdir})
	if err != nil {
		return fmt.Errorf("build: %w", err)
	}
	defer c.close()
	conn, err := c.beginDir(ctx)
	if err != nil {
		return fmt.Errorf("BEGIN_DIR: %w", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	return PostDescriptor(conn, doc)
}

// PostDescriptor sends doc as "POST /tor/hs/3/publish" on a directory
// stream and reads the answer (at most 64 KiB of it): nil for 200, an
// *HSDirError otherwise.
func PostDescriptor(conn io.ReadWriter, doc []byte) error {
	req := "POST " + PublishPath + " HTTP/1.0\r\nContent-Length: " + strconv.Itoa(len(doc)) + "\r\n\r\n"
	if _, err := conn.Write(append([]byte(req), doc...)); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(io.LimitReader(conn, maxDirResponse)), nil)
	if err != nil {
		return fmt.Errorf("reading HSDir answer: %w", err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg := resp.Status
		if len(body) > 0 {
			msg = string(body)
		}
		return &HSDirError{Status: resp.StatusCode, Msg: msg}
	}
	return nil
}
