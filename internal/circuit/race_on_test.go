//go:build race

package circuit_test

// raceEnabled: the race detector changes allocation counts (sync.Pool
// drops items on purpose), so allocation tests skip under -race.
const raceEnabled = true
