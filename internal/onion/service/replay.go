package service

// Replay caches for INTRODUCE2 (rend-spec-v3 §3.3 [PROCESS_INTRO2]: "it
// must maintain a replay cache for as long as it accepts cells with the
// same encryption key"): per introduction point, the digests of the
// ENCRYPTED sections seen with its keys (kept for the intro point's
// life, which bounds them by IntroMaxIntroduce2); and service-wide, the
// rendezvous cookies of the last cookieReplayWindow (C tor's
// replay_cache_rend_cookie: a client retrying its INTRODUCE1 reuses the
// cookie, and we already connect to that rendezvous point).

import (
	"crypto/sha3"
	"time"
)

const (
	cookieReplayWindow = 5 * time.Minute
	maxCookieEntries   = 1 << 16
)

type replayCache struct {
	window time.Duration // 0: forever
	max    int
	seen   map[[32]byte]time.Time
	order  [][32]byte // insertion order, for expiry and the size bound
}

func newReplayCache(window time.Duration, max int) *replayCache {
	return &replayCache{window: window, max: max, seen: map[[32]byte]time.Time{}}
}

// check records b and reports whether it was seen before (within the
// window). The oldest entries go first when the cache is full. Not safe
// for concurrent use.
func (r *replayCache) check(b []byte, now time.Time) bool {
	k := sha3.Sum256(b)
	for len(r.order) > 0 {
		old := r.order[0]
		if len(r.order) < r.max && (r.window == 0 || now.Sub(r.seen[old]) < r.window) {
			break
		}
		delete(r.seen, old)
		r.order = r.order[1:]
	}
	if t, ok := r.seen[k]; ok && (r.window == 0 || now.Sub(t) < r.window) {
		return true
	}
	r.seen[k] = now
	r.order = append(r.order, k)
	return false
}
