//go:build !race

package rollup_test

// raceEnabled skips allocation assertions: the race detector allocates.
const raceEnabled = false
