package hscrypto

import "crypto/ed25519"

func verifyEd25519(pub, msg, sig []byte) bool { return ed25519.Verify(pub, msg, sig) }
