package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// The README's set-up says, beside the command, that the first run is silent for minutes while
// Go downloads and compiles, and how long it took here: a new user otherwise thinks it hangs.
func TestREADMESetUpSaysTheFirstRunCompiles(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	start := strings.Index(readme, "## Set-up")
	end := strings.Index(readme, "## Quickstart")
	if start < 0 || end < start {
		t.Fatal("README has no Set-up section before the Quickstart")
	}
	setup := readme[start:end]
	block := regexp.MustCompile("(?s)```sh\n(.*?)```").FindStringSubmatch(setup)
	if block == nil || !strings.Contains(block[1], "go run ./cmd/quaycast serve") {
		t.Fatalf("the Set-up section has no sh block with `go run ./cmd/quaycast serve`:\n%s", setup)
	}
	if !regexp.MustCompile(`#.*first run.*(downloads|compiles)`).MatchString(block[1]) {
		t.Errorf("no comment beside the set-up commands that the first run downloads and compiles:\n%s", block[1])
	}
	prose := strings.Join(strings.Fields(setup), " ")
	if !regexp.MustCompile(`about \d+ minutes .* measured`).MatchString(prose) {
		t.Errorf("the Set-up section gives no measured time for the first build:\n%s", setup)
	}
	if !strings.Contains(readme, "## Quickstart (two minutes, once the first build is done)") {
		t.Error("the Quickstart's two minutes do not say they start from a warm cache")
	}
}
