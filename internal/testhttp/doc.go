// Package testhttp is how a test asks a server under test for a page: with a client of its own
// that keeps no connection alive to outlive the test. It is imported from _test.go files only.
package testhttp
