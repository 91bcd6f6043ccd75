package circuit_test

import (
	"bytes"
	"testing"

	"github.com/gotor/gotor/internal/cell"
	"github.com/gotor/gotor/internal/torcrypto"
)

// TestRelayCryptoAllocs: the relay crypto of a cell through three hops
// (tor-spec §6.1: the client's layered AES-128-CTR and running SHA-1
// digest, each way, and the relays' side used by fake relays) allocates
// nothing (issue 21 item 13; docs/BENCHMARKS.md ClientRelayCrypto3Hops).
func TestRelayCryptoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	var client torcrypto.Layers
	var relays []*torcrypto.RelayHop
	for i := range 3 {
		keys := bytes.Repeat([]byte{byte(i + 1)}, torcrypto.RelayKeyMaterialLen)
		h, err := torcrypto.NewHop(bytes.NewReader(keys))
		if err != nil {
			t.Fatal(err)
		}
		r, err := torcrypto.NewRelayHop(bytes.NewReader(keys))
		if err != nil {
			t.Fatal(err)
		}
		client = append(client, h)
		relays = append(relays, r)
	}
	p := new([cell.PayloadLen]byte) // as circuit.sendLocked: a payload that does not move
	allocs := testing.AllocsPerRun(1000, func() {
		// Backward: originated by hop 3, relayed by 2 and 1, recognized
		// by the client at hop 3.
		clear(p[:])
		relays[2].Originate(p)
		relays[1].Relay(p)
		relays[0].Relay(p)
		if hop, _, err := client.Decrypt(p); err != nil || hop != 2 {
			t.Fatalf("decrypt: hop %d, %v", hop, err)
		}
		// Forward: encrypted for hop 3, recognized only there.
		clear(p[:])
		client.Encrypt(p, 2)
		for i, r := range relays {
			if ok, _ := r.Receive(p); ok != (i == 2) {
				t.Fatalf("hop %d recognized: %v", i+1, ok)
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per cell each way, want 0", allocs)
	}
}
