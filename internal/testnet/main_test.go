package testnet

import (
	"testing"
	"time"
)

// sharedLatency is the one-way delay of the package's own shared network:
// the harness's tests run on a network behind the delay proxies, so both
// ORPort layouts are exercised (every other package's network has direct
// ORPorts).
const sharedLatency = 5 * time.Millisecond

func TestMain(m *testing.M) { Main(m, Options{Latency: sharedLatency}) }
