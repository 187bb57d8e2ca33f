package attempts_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/quaycast/quaycast/attempts"
)

// BenchmarkAppend appends records the size of a delivery's (about 1.2 KB) for 10 endpoints and
// many events, as the standard scenario does, and publishes them in the default window. B/op is
// what one record costs the batch it joins.
func BenchmarkAppend(b *testing.B) {
	nc, _ := setup(b)
	log := openLog(b, nc, attempts.Options{})
	record := bytes.Repeat([]byte("x"), 1200)
	eps := make([]string, 10)
	for i := range eps {
		eps[i] = fmt.Sprintf("ep_%d", i)
	}
	evs := make([]string, 4096)
	for i := range evs {
		evs[i] = fmt.Sprintf("evt-%d", i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if err := log.Append(eps[i%len(eps)], evs[i%len(evs)], record); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	log.Flush(b.Context())
}
