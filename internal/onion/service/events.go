package service

// Events and counters: what the engine turns into control-port HS_DESC
// events (control-spec §4.1.25: UPLOAD, UPLOADED, FAILED) and metrics.

import (
	"sync/atomic"
)

// EventKind names an event.
type EventKind int

// Event kinds.
const (
	EventUpload           EventKind = iota + 1 // a descriptor upload to HSDir began
	EventUploaded                              // HSDir accepted the descriptor
	EventUploadFailed                          // the upload failed (Reason says why)
	EventIntroEstablished                      // an introduction point is ready
	EventIntroLost                             // an introduction point is gone (Reason says why)
)

func (k EventKind) String() string {
	switch k {
	case EventUpload:
		return "UPLOAD"
	case EventUploaded:
		return "UPLOADED"
	case EventUploadFailed:
		return "FAILED"
	case EventIntroEstablished:
		return "INTRO_ESTABLISHED"
	case EventIntroLost:
		return "INTRO_LOST"
	}
	return "UNKNOWN"
}

// Event reports progress of the service.
type Event struct {
	Kind EventKind
	// Relay is the HSDir or introduction point (RSA identity).
	Relay [20]byte
	// BlindedKey identifies the descriptor (upload events).
	BlindedKey [32]byte
	// Reason is set for failures.
	Reason string
	// HSDirStatus is the HTTP status of an HSDir that refused an upload
	// (EventUploadFailed; 0 when the upload failed otherwise).
	HSDirStatus int
}

func (s *Service) emit(e Event) {
	if s.cfg.OnEvent == nil {
		return
	}
	s.eventMu.Lock()
	defer s.eventMu.Unlock()
	s.cfg.OnEvent(e)
}

// Stats are the service's counters since New.
type Stats struct {
	IntroEstablished   uint64 // ESTABLISH_INTRO answered by INTRO_ESTABLISHED
	IntroFailed        uint64 // intro circuits that failed or died
	Introduce2         uint64 // INTRODUCE2 cells received
	Introduce2Rejected uint64 // ... dropped: malformed, wrong key, bad MAC, replay, over the rendezvous limit
	Introduce2Replayed uint64 // ... of which replays (same ENCRYPTED section or rendezvous cookie)
	RendSucceeded      uint64 // rendezvous circuits joined
	RendFailed         uint64 // rendezvous attempts that failed
	StreamsOpened      uint64 // streams accepted (CONNECTED sent)
	StreamsRefused     uint64 // streams refused: no such port, MaxStreams, local target down, Accept backlog full
	UploadsSucceeded   uint64 // descriptor uploads accepted by an HSDir
	UploadsFailed      uint64 // uploads that failed or were refused
}

type counters struct {
	introEstablished, introFailed, introduce2, introduce2Rejected, introduce2Replayed,
	rendSucceeded, rendFailed, streamsOpened, streamsRefused, uploadsSucceeded, uploadsFailed atomic.Uint64
}

// Stats returns the counters.
func (s *Service) Stats() Stats {
	c := &s.stats
	return Stats{
		IntroEstablished: c.introEstablished.Load(), IntroFailed: c.introFailed.Load(),
		Introduce2: c.introduce2.Load(), Introduce2Rejected: c.introduce2Rejected.Load(),
		Introduce2Replayed: c.introduce2Replayed.Load(),
		RendSucceeded:      c.rendSucceeded.Load(), RendFailed: c.rendFailed.Load(),
		StreamsOpened: c.streamsOpened.Load(), StreamsRefused: c.streamsRefused.Load(),
		UploadsSucceeded: c.uploadsSucceeded.Load(), UploadsFailed: c.uploadsFailed.Load(),
	}
}
