// Revision counters from an order-preserving encryption of the time:
// rend-spec-v3 Appendix F.2 "Encrypted time in period", as C tor
// implements it (crypto_ope.c; hs_service.c set_descriptor_revision_counter
// and generate_ope_cipher_for_desc). Following C tor exactly keeps the
// counters of a service directory moved between C tor and gotor
// increasing, so HSDirs keep accepting its descriptors.

package hscrypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha3"
	"encoding/binary"
)

// OPEInputMax is the largest plaintext OPE accepts (C tor OPE_INPUT_MAX):
// seconds since the start of a shared random protocol run, at most two
// runs (48 h on the public network) plus one.
const OPEInputMax = 1 << 18

const opeSampleInterval = 1024 // plaintexts between cached sums (a multiple of 16)

// OPE is C tor's rudimentary order-preserving encryption: the encryption
// of N is the sum of the first N 16-bit little-endian words of an
// AES-256-CTR key stream, each plus one, so ciphertexts strictly increase
// with N.
type OPE struct {
	key     [32]byte
	samples [OPEInputMax / opeSampleInterval]uint64 // sums at 1024, 2048, ...
}

// NewOPE precomputes the sums at every 1024th plaintext (512 KiB of
// key stream).
func NewOPE(key [32]byte) *OPE {
	o := &OPE{key: key}
	s := o.stream(0)
	var v uint64
	for i := range o.samples {
		v += sumWords(s, opeSampleInterval)
		o.samples[i] = v
	}
	return o
}

// RevisionCounterOPE returns the OPE of a descriptor's blinded key:
// key = SHA3-256("rev-counter-generation\x00" | blinded secret key (64
// bytes: scalar | hash prefix)). C tor hashes the prefix string with its
// terminating NUL (sizeof).
func RevisionCounterOPE(blinded *ExpandedKey) *OPE {
	h := sha3.New256()
	h.Write([]byte("rev-counter-generation\x00"))
	h.Write(blinded.Scalar[:])
	h.Write(blinded.Prefix[:])
	var k [32]byte
	h.Sum(k[:0])
	return NewOPE(k)
}

// stream returns the AES-256-CTR key stream starting at byte offset off
// (a multiple of 16): the IV is zero but for its last four bytes, the
// big-endian block number.
func (o *OPE) stream(off uint32) cipher.Stream {
	blk, _ := aes.NewCipher(o.key[:]) // 32-byte key: cannot fail
	var iv [16]byte
	binary.BigEndian.PutUint32(iv[12:], off/16)
	return cipher.NewCTR(blk, iv[:])
}

func sumWords(s cipher.Stream, n int) uint64 {
	var buf [512]byte
	var total uint64
	for n > 0 {
		k := min(n, len(buf)/2)
		b := buf[:2*k]
		clear(b)
		s.XORKeyStream(b, b)
		for i := 0; i < k; i++ {
			total += uint64(binary.LittleEndian.Uint16(b[2*i:])) + 1
		}
		n -= k
	}
	return total
}

// Encrypt returns the ciphertext of plaintext, which must be in
// [1, OPEInputMax]; ok is false otherwise.
func (o *OPE) Encrypt(plaintext int) (v uint64, ok bool) {
	if plaintext <= 0 || plaintext > OPEInputMax {
		return 0, false
	}
	idx := plaintext / opeSampleInterval
	start := idx * opeSampleInterval
	if idx > 0 {
		v = o.samples[idx-1]
	}
	return v + sumWords(o.stream(uint32(start*2)), plaintext-start), true
}
