// Package testwait waits in a test for an outcome, polling a condition until a deadline, so that
// no test asserts with a bare sleep. It is imported from _test.go files only.
package testwait
