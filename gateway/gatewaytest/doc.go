// Package gatewaytest runs a quaycast gateway inside a test's process, as httptest runs an HTTP
// server: on free loopback ports and a data dir of the test's, stopped when the test ends.
// Imported from _test.go files only.
package gatewaytest
