package circuit

import "time"

// SetClock replaces the clock of half-closed congestion-controlled
// streams until restore is called.
func SetClock(f func() time.Time) (restore func()) {
	old := now
	now = f
	return func() { now = old }
}
