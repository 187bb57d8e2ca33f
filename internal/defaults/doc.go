// Package defaults owns the default value of every setting of `quaycast serve`, each written
// once. Package config gives them to the flags (through their help) and to config.Default;
// consumer and gateway fill an Options field left at zero from the same constant, since neither
// may import config. Standard library only.
package defaults
