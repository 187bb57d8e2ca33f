// Package tlstest owns the throwaway certificates of a test of the TLS listeners, as httptest
// does a test's HTTP server: a CA and a server certificate for 127.0.0.1 and localhost, written to
// files. It is imported from _test.go files only.
package tlstest
