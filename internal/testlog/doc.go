// Package testlog holds a log that goroutines write and a test reads: a gateway's zerolog
// output, a child process's stderr. It is imported from _test.go files only.
package testlog
