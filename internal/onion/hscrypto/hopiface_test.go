package hscrypto

import "github.com/gotor/gotor/internal/torcrypto"

// hopCrypto is the method set shared by torcrypto.Hop (ordinary hops)
// and RendHop (the virtual hop); a circuit can hold both as one
// interface.
type hopCrypto interface {
	SetForwardDigest(p *[509]byte) [20]byte
	EncryptForward(p *[509]byte)
	DecryptBackward(p *[509]byte)
	CheckBackward(p *[509]byte) (bool, [20]byte)
}

var (
	_ hopCrypto = (*torcrypto.Hop)(nil)
	_ hopCrypto = (*RendHop)(nil)
)
