package engine

import (
	"testing"
	"time"

	"github.com/gotor/gotor/internal/testnet"
)

// testLatency is the one-way delay of every ORPort link of the package's
// shared network (testnet.Options.Latency): the engine's tests run where
// round trips are as long as congestion control needs to matter (a
// 3-hop circuit's RTT is 6 x 20 ms). It is CI's one latency network.
const testLatency = 20 * time.Millisecond

func TestMain(m *testing.M) { testnet.Main(m, testnet.Options{Latency: testLatency}) }
