// Package payload owns what a receiver gets as the body of a delivery when its endpoint asks for
// more or less than the event as published: the event type mirrored into a top-level field, or
// only the fields chosen by JSON Pointers (RFC 6901). Without options the body is the
// publisher's bytes, untouched; callers skip this package then.
//
// It is pure functions over bytes and imports only the standard library and the shared field
// error type.
package payload
