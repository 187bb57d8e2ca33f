// Package config owns the settings of `quaycast serve`: one Config value, parsed once in cmd from
// flags and QUAYCAST_* environment variables, validated, and passed down.
//
// The struct tags are read by the CLI library (kong) in cmd; a tag's default names a variable
// of Vars, which writes out Default, which takes each value from package defaults. This package
// imports nothing from quaycast but that leaf, and nothing of the CLI library.
package config
