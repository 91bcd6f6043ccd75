//go:build race

package path

// raceEnabled shortens the longest loops under the race detector, which
// slows path selection about tenfold.
const raceEnabled = true
