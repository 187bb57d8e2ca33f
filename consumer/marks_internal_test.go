package consumer

import (
	"context"
	"encoding/base64"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/consumer/natstest"
)

func marksEnv(t *testing.T) (jetstream.JetStream, *Marks) {
	t.Helper()
	_, js := natstest.ConnectJetStream(t, natstest.Start(t))
	return js, openMarks(t, js)
}

func openMarks(t *testing.T, js jetstream.JetStream) *Marks {
	t.Helper()
	m, err := NewMarks(t.Context(), js, time.Hour, time.Hour, 1, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// reload reads the record back as a new gateway would, into a fresh progress.
func reload(t *testing.T, js jetstream.JetStream, endpointID string) *progress {
	t.Helper()
	m := openMarks(t, js)
	rec, err := m.load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	d := newProgress(endpointID, m)
	restoreInto(d, rec[endpointID])
	return d
}

func subjectMsgs(t *testing.T, m *Marks, endpointID string) uint64 {
	t.Helper()
	info, err := m.stream.Info(t.Context(), jetstream.WithSubjectFilter(marksSubject(endpointID)))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects[marksSubject(endpointID)]
}

// The log is one message per endpoint per flush, however many entities changed; it is replaced
// by a snapshot once it has grown past twice the marks, and reads back to the same marks, ids,
// retry state and all.
func TestMarksLogFlushSnapshotAndReload(t *testing.T) {
	t.Parallel()
	js, m := marksEnv(t)
	d := newProgress("ep1", m)
	first := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	for i := range 500 {
		d.add(fmt.Sprintf("C%d", i), uint64(i+1), fmt.Sprintf("evt-%d", i), time.Now())
	}
	d.attempted("C7", 900, first)
	d.attempted("C7", 900, first)
	m.flush(t.Context())
	if n := subjectMsgs(t, m, "ep1"); n != 1 {
		t.Fatalf("one flush of 500 changed marks wrote %d messages, want 1", n)
	}
	// Many flushes of one busy entity: the log would grow by one message each; a snapshot
	// replaces it once it holds more than twice the marks (+1000).
	for i := range 1600 {
		d.add("C1", uint64(1000+i), fmt.Sprintf("busy-%d", i), time.Now())
		m.flush(t.Context())
	}
	if n := subjectMsgs(t, m, "ep1"); n > 1100 {
		t.Errorf("after 1,600 flushes the log holds %d messages: no snapshot replaced it", n)
	}

	r := reload(t, js, "ep1")
	if r.len() != 500 {
		t.Errorf("read back %d marks, want 500", r.len())
	}
	if !r.covers("C1", 2599) || r.covers("C1", 2600) {
		t.Errorf("C1's mark not read back at 2599")
	}
	if got := previousOf(r, "C1", 2600); got != "busy-1599" {
		t.Errorf("previous id of C1 = %q, want busy-1599", got)
	}
	if got := previousOf(r, "C42", 1000); got != "evt-42" {
		t.Errorf("previous id of C42 = %q, want evt-42", got)
	}
	if a, f := r.retryState("C7", 900); a != 2 || !f.Equal(first) {
		t.Errorf("C7's head retry state read back as %d attempts since %v, want 2 since %v", a, f, first)
	}
}

// A rewind lowers the marks durably: after it, and after a restart, the events from the rewind
// point on are no longer recognised as sent (they will be delivered again), and earlier ones are.
func TestMarksRewind(t *testing.T) {
	t.Parallel()
	js, m := marksEnv(t)
	d := newProgress("ep1", m)
	d.add("A", 10, "a10", time.Now())
	d.add("B", 20, "b20", time.Now())
	m.flush(t.Context())
	d.rewind(15)
	if !d.covers("A", 10) || d.covers("B", 16) {
		t.Fatalf("rewind to 15: A@10 covered %v (want true), B@16 covered %v (want false)", d.covers("A", 10), d.covers("B", 16))
	}
	m.flush(t.Context())
	r := reload(t, js, "ep1")
	if !r.covers("A", 10) || r.covers("B", 16) || r.covers("B", 20) {
		t.Errorf("after a restart the rewind is lost: A@10 %v, B@16 %v, B@20 %v", r.covers("A", 10), r.covers("B", 16), r.covers("B", 20))
	}
}

// A flush forgets, once per pruneEvery, the marks set longer ago than the record's max age —
// their events have left the stream, so nothing can come again for them to cover — and keeps the
// younger ones, also in the record read back.
func TestMarksFlushPrunesExpiredMarks(t *testing.T) {
	t.Parallel()
	js, m := marksEnv(t) // max age 1h
	d := newProgress("ep1", m)
	now := time.Now()
	d.set("old", markEntry{Entity: "old", Seq: 5, ID: "e5", At: now.Add(-2 * time.Hour).Unix()})
	d.set("young", markEntry{Entity: "young", Seq: 6, ID: "e6", At: now.Add(-50 * time.Minute).Unix()})
	d.add("new", 7, "e7", time.Now())
	m.flush(t.Context())
	if !d.covers("old", 5) {
		t.Fatal("pruned within pruneEvery of the record's opening")
	}
	m.mu.Lock()
	m.pruned = time.Now().Add(-pruneEvery)
	m.mu.Unlock()
	m.flush(t.Context())

	if d.covers("old", 5) || previousOf(d, "old", 8) != "" {
		t.Error("a mark older than the max age survived the flush")
	}
	if !d.covers("young", 6) || !d.covers("new", 7) || d.len() != 2 {
		t.Errorf("the marks within the max age: young %v, new %v, %d marks; want both, 2", d.covers("young", 6), d.covers("new", 7), d.len())
	}
	if r := reload(t, js, "ep1"); r.covers("old", 5) || !r.covers("new", 7) {
		t.Errorf("read back: old covered %v, new covered %v; want false, true", r.covers("old", 5), r.covers("new", 7))
	}
}

// Marks of the release that kept one key per entity are moved into the log, and the old bucket
// is deleted.
func TestMarksMovedFromOldBucket(t *testing.T) {
	t.Parallel()
	_, js := natstest.ConnectJetStream(t, natstest.Start(t))
	kv, err := js.CreateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: LegacyMarksBucket})
	if err != nil {
		t.Fatal(err)
	}
	key := "ep1." + base64.RawURLEncoding.EncodeToString([]byte("MSCU 1234567"))
	if _, err := kv.Put(t.Context(), key, []byte(`{"seq":41,"head":42,"attempts":3,"first":"2026-11-30T10:00:00Z"}`)); err != nil {
		t.Fatal(err)
	}
	r := reload(t, js, "ep1")
	if !r.covers("MSCU 1234567", 41) || r.covers("MSCU 1234567", 42) {
		t.Errorf("old mark not moved: covers 41 %v, 42 %v", r.covers("MSCU 1234567", 41), r.covers("MSCU 1234567", 42))
	}
	if a, _ := r.retryState("MSCU 1234567", 42); a != 3 {
		t.Errorf("old retry state not moved: %d attempts, want 3", a)
	}
	if _, err := js.KeyValue(t.Context(), LegacyMarksBucket); err == nil {
		t.Errorf("old bucket still there after the move")
	}
	if r := reload(t, js, "ep1"); !r.covers("MSCU 1234567", 41) {
		t.Errorf("moved mark lost at the next start")
	}
}

// The record's memory at #10's size, 20,000 entities × 10 endpoints: reported as MiB (the goal
// is at most 50) and bytes per mark. Entities and ids are as long as the bench's.
func BenchmarkMarksMemory(b *testing.B) {
	b.ReportAllocs()
	const endpoints, entities = 10, 20_000
	var before, after runtime.MemStats
	for range b.N {
		runtime.GC()
		runtime.ReadMemStats(&before)
		all := make([]*progress, endpoints)
		for e := range all {
			d := newProgress(fmt.Sprintf("ep%02d", e), nil)
			for i := range entities {
				d.add(fmt.Sprintf("MSCU%07d", i), uint64(i+1), fmt.Sprintf("evt-%016x", i), time.Now())
			}
			all[e] = d
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(all)
	}
	held := float64(after.HeapAlloc - before.HeapAlloc)
	b.ReportMetric(held/(1<<20), "MiB")
	b.ReportMetric(held/(endpoints*entities), "B/mark")
}

// previousOf is the previous event id d gives a lane for seq of entity.
func previousOf(d *progress, entity string, seq uint64) string {
	previous, _, _ := d.headState(entity, seq)
	return previous
}

// Endpoints released together — a gateway that stops hands all of them over — each have their
// last changes written (more of them than a window of writes), and are written no more after;
// an endpoint unregistered before its release (deleted) gets nothing written.
func TestMarksReleaseManyAtOnce(t *testing.T) {
	t.Parallel()
	js, m := marksEnv(t)
	const endpoints = marksWindow + 44
	ps := make([]*progress, endpoints)
	for i := range ps {
		ps[i] = newProgress(fmt.Sprintf("ep%03d", i), m)
		ps[i].add("C1", 1, "evt-1", time.Now())
	}
	m.flush(t.Context())
	for i, p := range ps {
		p.add("C1", uint64(2+i), fmt.Sprintf("last-%d", i), time.Now())
	}
	deleted := newProgress("gone", m)
	deleted.add("C1", 1, "evt-1", time.Now())
	m.unregister(deleted)

	var wg sync.WaitGroup
	for _, p := range append(ps, deleted) {
		wg.Go(func() {
			if err := m.release(t.Context(), p); err != nil {
				t.Errorf("release %s: %v", p.endpointID, err)
			}
		})
	}
	wg.Wait()
	m.mu.Lock()
	left := len(m.sources)
	m.mu.Unlock()
	if left != 0 {
		t.Errorf("%d endpoints still written by the flush after their release", left)
	}
	for i, p := range ps {
		r := reload(t, js, p.endpointID)
		if got := previousOf(r, "C1", uint64(3+i)); got != fmt.Sprintf("last-%d", i) {
			t.Fatalf("%s read back with C1's last id %q, want last-%d", p.endpointID, got, i)
		}
	}
	if n := subjectMsgs(t, m, "gone"); n != 0 {
		t.Errorf("a deleted endpoint's release wrote %d messages, want none", n)
	}
}

// A fence (or a delete) while a long batch is written: the endpoints unregistered before their
// window comes are not written, so no stale mark lands over the next owner's.
func TestMarksWriteSkipsWhatWasUnregistered(t *testing.T) {
	t.Parallel()
	_, m := marksEnv(t)
	ws := make([]*markWrite, 2*marksWindow)
	for i := range ws {
		p := newProgress(fmt.Sprintf("ep%03d", i), m)
		p.add("C1", 1, "evt-1", time.Now())
		ws[i] = &markWrite{d: p}
	}
	for _, w := range ws[marksWindow+1:] { // fenced after the batch was taken
		m.unregister(w.d)
	}
	m.writeAll(t.Context(), ws)
	info, err := m.stream.Info(t.Context(), jetstream.WithSubjectFilter(marksSubjects))
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range ws {
		n := info.State.Subjects[marksSubject(w.d.endpointID)]
		if registered := i <= marksWindow; registered && n == 0 {
			t.Fatalf("%s, still registered, wrote nothing", w.d.endpointID)
		} else if !registered && n != 0 {
			t.Fatalf("%s, unregistered before its window, wrote %d messages, want none", w.d.endpointID, n)
		}
	}
}

// A release that waited for the writer past its caller's deadline is still written: the batch
// has a deadline of its own.
func TestMarksReleaseOutlastsAWaitForTheWriter(t *testing.T) {
	t.Parallel()
	js, m := marksEnv(t)
	p := newProgress("ep", m)
	p.add("C1", 1, "evt-1", time.Now())
	m.flushing.Lock() // a flush under way
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- m.release(ctx, p) }()
	<-ctx.Done()
	m.flushing.Unlock()
	if err := <-done; err != nil {
		t.Fatalf("release after its caller's deadline passed in the wait: %v", err)
	}
	if got := previousOf(reload(t, js, "ep"), "C1", 2); got != "evt-1" {
		t.Fatalf("read back C1's last id %q, want evt-1", got)
	}
}
