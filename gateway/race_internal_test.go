//go:build race

package gateway

// raceEnabled skips allocation assertions: the race detector's instrumentation allocates.
const raceEnabled = true
