// Package testtool decides what a test does when a tool it needs (node, python3, chromium) is not
// installed: skip on a developer's machine, fail in CI, whose .ci/run installs every tool. It is
// imported from _test.go files only.
package testtool
