// Package bench is the SRE harness: it drives a gateway as a black box with bounded, paced load
// on loopback, and checks what the receivers got against what was published — lost, duplicated
// and out-of-order deliveries per endpoint and entity.
package bench
