package testlog_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/quaycast/quaycast/internal/testlog"
)

// Lines written from many goroutines at once all arrive whole, and String can be read meanwhile
// (the race detector checks the locking).
func TestBufferConcurrentWrites(t *testing.T) {
	t.Parallel()
	var b testlog.Buffer
	if b.String() != "" {
		t.Fatalf("zero Buffer holds %q", b.String())
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				if _, err := fmt.Fprintf(&b, "g%d line %d\n", g, i); err != nil {
					t.Error(err)
				}
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 800 {
		t.Fatalf("%d lines, want 800", len(lines))
	}
	for g := range 8 {
		if want := fmt.Sprintf("g%d line 99", g); !strings.Contains(b.String(), want+"\n") {
			t.Errorf("lacks %q", want)
		}
	}
}
