package service

// The service's two descriptors: rend-spec-v3 §2.2.2.1 (overlapping
// descriptors), §2.2.4.2 [SERVICEUPLOAD] (which time periods and SRVs),
// §2.1 (the blinded key and subcredential of each period), §2.4 (a fresh
// descriptor signing key per period, certified by the blinded key for
// 54 hours as C tor's HS_DESC_CERT_LIFETIME), Appendix F.2 (revision
// counters: C tor's OPE of the seconds since the descriptor's SRV
// protocol run began), §2.5 (encryption, client authorization).

import (
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/gotor/gotor/internal/netdir"
	"github.com/gotor/gotor/internal/onion/hscrypto"
	"github.com/gotor/gotor/internal/onion/hsdesc"
)

// certLifetime is C tor's HS_DESC_CERT_LIFETIME.
const certLifetime = 54 * time.Hour

// periodDesc is the state of one descriptor. Guarded by Service.mu.
type periodDesc struct {
	params  hscrypto.ServiceDescParams
	second  bool // the "second" (next) descriptor
	blinded *hscrypto.ExpandedKey
	subcred [32]byte
	signing ed25519.PrivateKey
	ope     *hscrypto.OPE // built at the first upload (512 KiB of AES)
	// lastPlain is the last OPE input used: revision counters strictly
	// increase even for uploads within the same second.
	lastPlain int

	// Upload state (publish.go).
	version    int                    // Service.introVersion of the document uploaded last
	accepted   map[[20]byte]bool      // HSDirs that accepted that version
	failed     map[[20]byte]time.Time // HSDirs whose upload of that version failed, when
	nextUpload time.Time              // full re-upload (rend-spec §2.2.2: every 60-120 minutes)
	inFlight   int
	ringDir    *netdir.NetDir
	ring       *hscrypto.Ring
}

// maintainDescriptors keeps one descriptor for each of the two periods
// the consensus calls for, dropping the one rotated out. Under s.mu.
func (s *Service) maintainDescriptors(dir *netdir.NetDir, now time.Time) {
	sched := hscrypto.ScheduleFor(dir, s.cfg.TestingNetwork)
	first, second := hscrypto.ServiceUploadParams(dir, sched)
	want := map[uint64]hscrypto.ServiceDescParams{first.Ring.PeriodNum: first, second.Ring.PeriodNum: second}
	for k, d := range s.descs {
		// The blinded key depends on the period length too, which a
		// consensus parameter could change.
		if p, ok := want[k]; !ok || p.Ring.Schedule.PeriodLength != d.params.Ring.Schedule.PeriodLength {
			delete(s.descs, k)
		}
	}
	for k, p := range want {
		d := s.descs[k]
		if d == nil {
			var err error
			if d, err = s.newPeriodDesc(p, now); err != nil {
				s.log.Warn("onion service: cannot make descriptor keys", "err", err)
				continue
			}
			s.descs[k] = d
		}
		d.params = p
		d.second = p.Ring.PeriodNum == second.Ring.PeriodNum
	}
}

func (s *Service) newPeriodDesc(p hscrypto.ServiceDescParams, now time.Time) (*periodDesc, error) {
	id := s.cfg.Identity.key
	blinded, err := hscrypto.BlindPrivateKey(id, p.Ring.PeriodNum, p.Ring.Schedule.PeriodLength)
	if err != nil {
		return nil, err
	}
	_, signing, err := ed25519.GenerateKey(s.cfg.Rand)
	if err != nil {
		return nil, err
	}
	return &periodDesc{
		params: p, blinded: blinded, signing: signing,
		subcred:  hscrypto.Subcredential(id.Public, blinded.Public),
		version:  -1,
		accepted: map[[20]byte]bool{}, failed: map[[20]byte]time.Time{},
		nextUpload: now,
	}, nil
}

// subcredentials returns the subcredentials of the current descriptors,
// to try on an INTRODUCE2.
func (s *Service) subcredentials() [][32]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][32]byte, 0, len(s.descs))
	for _, d := range s.descs {
		out = append(out, d.subcred)
	}
	return out
}

// hsdirs returns the HSDirs responsible for d in dir (spread_store per
// replica), reusing the ring while the consensus is the same.
func (d *periodDesc) hsdirs(dir *netdir.NetDir) []*netdir.Relay {
	if d.ring == nil || d.ringDir != dir || d.ring.Params() != d.params.Ring {
		d.ring, d.ringDir = hscrypto.NewRing(dir, d.params.Ring), dir
	}
	return d.ring.Responsible(d.blinded.Public)
}

// document builds, signs and encrypts the descriptor with the
// established intro points. Under s.mu.
func (s *Service) document(d *periodDesc, now time.Time) ([]byte, error) {
	var ips []hsdesc.BuildIntroPoint
	for _, ip := range s.intros {
		if ip.established {
			ips = append(ips, hsdesc.BuildIntroPoint{LinkSpecs: ip.linkSpecs, OnionKey: ip.onionKey, AuthKey: ip.authPub, EncKey: ip.encPK})
		}
	}
	if d.ope == nil {
		d.ope = hscrypto.RevisionCounterOPE(d.blinded)
	}
	plain := int(now.Sub(d.params.RunStart)/time.Second) + 1
	if plain <= d.lastPlain {
		plain = d.lastPlain + 1
	}
	plain = max(1, min(plain, hscrypto.OPEInputMax))
	rev, ok := d.ope.Encrypt(plain)
	if !ok {
		return nil, fmt.Errorf("revision counter input %d out of range", plain)
	}
	d.lastPlain = plain
	doc, err := hsdesc.Build(hsdesc.BuildParams{
		Identity: s.cfg.Identity.key, PeriodNum: d.params.Ring.PeriodNum, PeriodLength: d.params.Ring.Schedule.PeriodLength,
		SigningKey: d.signing, RevisionCounter: rev, CertExpires: now.Add(certLifetime),
		IntroPoints: ips, AuthorizedClients: s.cfg.AuthorizedClients, Rand: s.cfg.Rand,
	})
	if err != nil {
		return nil, err
	}
	if len(doc) > hsdesc.MaxDescriptorSize {
		return nil, fmt.Errorf("descriptor of %d bytes exceeds %d", len(doc), hsdesc.MaxDescriptorSize)
	}
	return doc, nil
}
