// Package browsertest starts headless Chromium for a test, through chromedp, so that a test can
// open a page the way a person would and check what is drawn: the bench's HTML report now, the
// web console later. It is imported from _test.go files only.
package browsertest
