// Consensus signature and timeliness checks: dir-spec §1.3 ("Signing
// documents"), §3.4.1 ("directory-signature", "valid-after",
// "fresh-until", "valid-until") and §5.1 / §5.4 (clients use a consensus
// that is "reasonably live": expired less than 24 hours ago).

package netdoc

import (
	"crypto"
	"crypto/rsa"
	"errors"
	"fmt"
	"time"
)

// Errors returned by Consensus.Verify and Consensus.CheckTime; test with
// errors.Is.
var (
	// ErrBadSignature: a directory-signature from a configured authority,
	// made with a key we hold a valid certificate for, did not verify
	// (wrapped with ErrTooFewSignatures, or in SignatureStatus.BadErrs
	// of an accepted consensus).
	ErrBadSignature = errors.New("netdoc: consensus has a bad signature")
	// ErrTooFewSignatures: fewer than a majority of the configured
	// authorities signed validly.
	ErrTooFewSignatures = errors.New("netdoc: consensus has too few valid signatures")
	// ErrExpired: the consensus is past valid-until (plus tolerance).
	ErrExpired = errors.New("netdoc: consensus expired")
	// ErrNotYetValid: the consensus's valid-after is in the future.
	ErrNotYetValid = errors.New("netdoc: consensus not yet valid")
)

// ReasonablyLive is how long after valid-until a consensus we already
// hold may still be used (dir-spec §5.1).
const ReasonablyLive = 24 * time.Hour

// CheckTime checks that now lies within [valid-after - skew,
// valid-until + tolerance]. Use tolerance 0 for a newly fetched consensus
// and ReasonablyLive for one already held.
func (c *Consensus) CheckTime(now time.Time, skew, tolerance time.Duration) error {
	if now.Add(skew).Before(c.ValidAfter) {
		return fmt.Errorf("%w: valid-after %s is later than now (%s)", ErrNotYetValid,
			c.ValidAfter.Format(timeLayout), now.UTC().Format(timeLayout))
	}
	if now.After(c.ValidUntil.Add(tolerance)) {
		return fmt.Errorf("%w: valid-until %s (tolerance %s) is earlier than now (%s)", ErrExpired,
			c.ValidUntil.Format(timeLayout), tolerance, now.UTC().Format(timeLayout))
	}
	return nil
}

// SignatureStatus summarises a Verify run.
type SignatureStatus struct {
	Good        int        // distinct configured authorities with a valid signature
	Bad         int        // signatures by configured authorities that failed verification
	BadErrs     []error    // one error per bad signature (wrapping ErrBadSignature), to log
	MissingCert [][20]byte // signing-key digests we lack a certificate for, with identity
	MissingID   [][20]byte // identity of authorities whose certificate is missing
}

// Verify checks the consensus signatures against the configured
// authorities (v3 identity fingerprints) and their key certificates,
// which must already have been verified with KeyCert.Verify. As C tor
// (networkstatus_check_consensus_signature), it succeeds when more than
// half of the configured authorities, each counted once, signed
// validly; signatures by other identities are ignored, and bad
// signatures by configured authorities are reported in the status
// (BadErrs, for the caller to log) but do not outvote the good ones.
// When too few are good, the error wraps ErrTooFewSignatures and, if
// any signature was bad, ErrBadSignature.
func (c *Consensus) Verify(authorities [][20]byte, certs []*KeyCert) (SignatureStatus, error) {
	var st SignatureStatus
	trusted := make(map[[20]byte]bool, len(authorities))
	for _, a := range authorities {
		trusted[a] = true
	}
	type certKey struct{ id, sk [20]byte }
	byKey := make(map[certKey]*KeyCert, len(certs))
	for _, kc := range certs {
		byKey[certKey{kc.Fingerprint, kc.SigningKeyDigest}] = kc
	}
	good := map[[20]byte]bool{}
	for _, sig := range c.Signatures {
		if !trusted[sig.Identity] {
			continue
		}
		kc := byKey[certKey{sig.Identity, sig.SigningKeyDigest}]
		if kc == nil {
			st.MissingCert = append(st.MissingCert, sig.SigningKeyDigest)
			st.MissingID = append(st.MissingID, sig.Identity)
			continue
		}
		var digest []byte
		switch sig.Algorithm {
		case "sha1":
			digest = c.SHA1Digest[:]
		case "sha256":
			digest = c.SHA256Digest[:]
		default:
			continue
		}
		if err := rsa.VerifyPKCS1v15(kc.SigningKey, crypto.Hash(0), digest, sig.Signature); err != nil {
			st.Bad++
			st.BadErrs = append(st.BadErrs, fmt.Errorf("%w: line %d: %s signature by authority %X does not verify",
				ErrBadSignature, sig.Line, sig.Algorithm, sig.Identity))
			continue
		}
		good[sig.Identity] = true
	}
	st.Good = len(good)
	need := len(trusted)/2 + 1
	if st.Good < need {
		err := fmt.Errorf("%w: %d of %d authorities signed validly, need %d (%d bad, %d lack a certificate)",
			ErrTooFewSignatures, st.Good, len(trusted), need, st.Bad, len(st.MissingCert))
		return st, errors.Join(append([]error{err}, st.BadErrs...)...)
	}
	return st, nil
}
