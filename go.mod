module github.com/gotor/gotor

go 1.26

require (
	filippo.io/edwards25519 v1.2.0 // indirect
	golang.org/x/crypto v0.59.0 // indirect
	golang.org/x/net v0.62.0 // indirect
)
