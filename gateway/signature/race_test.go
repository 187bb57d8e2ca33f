//go:build race

package signature

// raceEnabled skips allocation assertions: the race detector's
// instrumentation allocates.
const raceEnabled = true
