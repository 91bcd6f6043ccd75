// Package reliability holds gotor's reliability and security tests
// (issue #11 and the fault/restart parts of issue #6): relays, guards and
// authorities killed or replaced under a running client on the private
// network of real C tor relays (internal/testnet), load through the SOCKS
// port, hostile peers speaking the link protocol, and the client's local
// attack surface. See docs/RELIABILITY.md and docs/SECURITY.md.
//
// The package has no non-test code beyond this comment; the tests run
// with the integration tests (they skip under -short).
package reliability
