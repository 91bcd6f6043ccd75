package isolation_test

import (
	"fmt"
	"net/netip"

	"github.com/gotor/gotor/internal/isolation"
)

// A SocksPort with C tor's default isolation: two users never share a
// circuit, one user's streams to different sites do.
func Example() {
	opts := isolation.DefaultListenerOptions()
	stream := func(user, dest string) isolation.Key {
		return isolation.NewKey(isolation.StreamInfo{
			DestAddr:     dest,
			DestPort:     443,
			Username:     []byte(user),
			Password:     []byte("x"),
			ClientAddr:   netip.MustParseAddrPort("127.0.0.1:50000"),
			SessionGroup: opts.SessionGroup,
			Protocol:     isolation.ProtoSOCKS5,
		}, opts.Flags)
	}
	var circuit isolation.Binding // the circuit's isolation state
	circuit.Attach(stream("alice", "example.com"))
	fmt.Println(circuit.Compatible(stream("alice", "example.org")))
	fmt.Println(circuit.Compatible(stream("bob", "example.com")))
	// Output:
	// true
	// false
}

func ExampleFlagsFromConfig() {
	f, _ := isolation.FlagsFromConfig(isolation.Config{IsolationLevel: "destination", IsolateSOCKSAuth: true})
	fmt.Println(f)
	off, _ := isolation.FlagsFromConfig(isolation.Config{IsolationLevel: "none"})
	fmt.Println(off)
	// Output:
	// IsolateDestPort+IsolateDestAddr+IsolateSOCKSAuth+IsolateClientAddr+SessionGroup+NymEpoch+SessionToken
	// SessionGroup+NymEpoch+SessionToken
}
