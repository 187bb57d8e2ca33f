// Package config holds the gateway's settings: one Config value with documented defaults,
// parsed once in cmd from flags and QUAYCAST_* environment variables and passed down.
//
// The struct tags are read by the CLI library (kong) in cmd; this package imports nothing
// from quaycast and nothing of the CLI library.
package config
