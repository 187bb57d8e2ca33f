// Package natstest owns the embedded JetStream server of a test, as httptest does an HTTP
// server. It runs on 127.0.0.1, a random port and a store in t.TempDir(), shuts down when the
// test ends, and restarts on the same store and port. It is imported from _test.go files only.
package natstest
