package attempts_test

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quaycast/quaycast/attempts"
	"github.com/quaycast/quaycast/consumer/natstest"
	"github.com/quaycast/quaycast/internal/testwait"
	"github.com/quaycast/quaycast/subjects"
)

func setup(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, js := natstest.ConnectJetStream(t, natstest.Start(t))
	if err := attempts.Setup(t.Context(), js, attempts.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// openLog opens the log on nc.
func openLog(t testing.TB, nc *nats.Conn, o attempts.Options) *attempts.Log {
	t.Helper()
	log, err := attempts.New(t.Context(), nc, o)
	if err != nil {
		t.Fatal(err)
	}
	return log
}

// The streams keep what they always kept, however often Setup runs: file storage, the log's max
// age (72h unless told), direct gets for the API's reads.
func TestSetup(t *testing.T) {
	t.Parallel()
	_, js := setup(t)
	st, err := js.Stream(t.Context(), attempts.LogStream)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.CachedInfo().Config.MaxAge; got != 72*time.Hour {
		t.Errorf("default max age %s, want 72h", got)
	}
	if err := attempts.Setup(t.Context(), js, attempts.StreamOptions{MaxAge: time.Hour}); err != nil {
		t.Fatalf("second Setup: %v", err)
	}
	for name, subject := range map[string]string{attempts.LogStream: "quaycast.attempts.>", attempts.RepliesStream: attempts.ReplyPrefix + ">"} {
		st, err := js.Stream(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		c := st.CachedInfo().Config
		if len(c.Subjects) != 1 || c.Subjects[0] != subject || c.Storage != jetstream.FileStorage || c.MaxAge != time.Hour || !c.AllowDirect || c.Replicas != 1 {
			t.Errorf("%s: subjects %v, storage %v, max age %s, direct %v, replicas %d", name, c.Subjects, c.Storage, c.MaxAge, c.AllowDirect, c.Replicas)
		}
	}
}

// Records are listed per endpoint, per event or both, oldest first, a page at a time.
func TestListSelectsAndPages(t *testing.T) {
	t.Parallel()
	nc, _ := setup(t)
	log := openLog(t, nc, attempts.Options{})
	// Ids with characters a subject token cannot hold are encoded, not mixed up.
	eps, evs := []string{"ep_a", "ep.b"}, []string{"evt 1", "evt-2", "evt-3"}
	for _, ep := range eps {
		for _, ev := range evs {
			if err := log.Append(ep, ev, []byte(ep+"|"+ev)); err != nil {
				t.Fatal(err)
			}
		}
	}
	all := func(q attempts.Query) []string { return data(pageAll(t, log, q)) }
	testwait.For(t, 10*time.Second, "six records stored", func() bool { return len(all(attempts.Query{Limit: 100})) == 6 })

	tests := []struct {
		name string
		q    attempts.Query
		want []string
	}{
		{"one endpoint, pages of two", attempts.Query{EndpointID: "ep.b", Limit: 2}, []string{"ep.b|evt 1", "ep.b|evt-2", "ep.b|evt-3"}},
		{"one event", attempts.Query{EventID: "evt 1", Limit: 10}, []string{"ep_a|evt 1", "ep.b|evt 1"}},
		{"both", attempts.Query{EndpointID: "ep_a", EventID: "evt-3", Limit: 10}, []string{"ep_a|evt-3"}},
		{"matching", attempts.Query{Match: func(b []byte) bool { return bytes.HasSuffix(b, []byte("evt-2")) }, Limit: 10}, []string{"ep_a|evt-2", "ep.b|evt-2"}},
		{"until before the first", attempts.Query{Until: time.Now().Add(-time.Hour), Limit: 10}, nil},
		{"since after the last", attempts.Query{Since: time.Now().Add(time.Hour), Limit: 10}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := all(tc.q); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// A reply is published on quaycast.reply.<source>.<endpoint>.<type>.<entity>, ids encoded as
// tokens, with the delivery, endpoint and entity in headers.
func TestPublishReply(t *testing.T) {
	t.Parallel()
	_, js := setup(t)
	if err := attempts.PublishReply(js, "tos", "ep.1", "cargo_loaded", "MSCU 1", "dlv-1", []byte(`{"ok":true}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(10 * time.Second):
		t.Fatal("reply not acknowledged within 10s")
	}
	st, err := js.Stream(t.Context(), attempts.RepliesStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(t.Context(), attempts.ReplyPrefix+">")
	if err != nil {
		t.Fatal(err)
	}
	want := "quaycast.reply.tos." + subjects.EncodeToken("ep.1") + ".cargo_loaded." + subjects.EncodeToken("MSCU 1")
	if m.Subject != want || string(m.Data) != `{"ok":true}` {
		t.Errorf("reply %s %s, want %s", m.Subject, m.Data, want)
	}
	for h, v := range map[string]string{"Quaycast-Delivery-Id": "dlv-1", "Quaycast-Endpoint": "ep.1", subjects.HeaderEntity: "MSCU 1"} {
		if got := m.Header.Get(h); got != v {
			t.Errorf("header %s = %q, want %q", h, got, v)
		}
	}
}

// An endpoint's records share 16 subjects, whatever the number of events (the server indexes
// every subject for as long as the log keeps it), and are stored many to a message; a query for
// one event still gets its records alone, though 600 events share the buckets.
func TestRecordsAreBatchedOnBoundedSubjects(t *testing.T) {
	t.Parallel()
	nc, js := setup(t)
	log := openLog(t, nc, attempts.Options{Window: time.Hour}) // batches are published by List
	const events = 600
	for i := range events {
		ev := fmt.Sprintf("evt-%d", i)
		if err := log.Append("ep_a", ev, []byte(ev)); err != nil {
			t.Fatal(err)
		}
	}
	for _, i := range []int{0, 1, 299, 599} {
		ev := fmt.Sprintf("evt-%d", i)
		recs, _, err := log.List(t.Context(), attempts.Query{EndpointID: "ep_a", EventID: ev, Limit: 10})
		if err != nil || len(recs) != 1 || string(recs[0].Data) != ev {
			t.Errorf("records of %s: %d (%v), want its one", ev, len(recs), err)
		}
	}
	info := streamInfo(t, js)
	if info.State.Msgs > 32 || info.State.NumSubjects > 16 {
		t.Errorf("%d records made %d messages on %d subjects, want at most 32 on 16", events, info.State.Msgs, info.State.NumSubjects)
	}
	got := data(pageAll(t, log, attempts.Query{EndpointID: "ep_a", Limit: 7}))
	if len(got) != events || len(unique(got)) != events {
		t.Errorf("paged through %d records (%d distinct), want each of %d once", len(got), len(unique(got)), events)
	}
}

// pageAll lists every record q selects, following the cursor page by page.
func pageAll(t *testing.T, log *attempts.Log, q attempts.Query) []attempts.Record {
	t.Helper()
	var all []attempts.Record
	for range 1000 {
		recs, next, err := log.List(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, recs...)
		if next == 0 {
			return all
		}
		q.After = next
	}
	t.Fatal("more than 1000 pages")
	return nil
}

// data is the records' contents, as strings.
func data(recs []attempts.Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, string(r.Data))
	}
	return out
}

func streamInfo(t *testing.T, js jetstream.JetStream) *jetstream.StreamInfo {
	t.Helper()
	st, err := js.Stream(t.Context(), attempts.LogStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func unique(s []string) map[string]bool {
	m := make(map[string]bool, len(s))
	for _, v := range s {
		m[v] = true
	}
	return m
}

// A cursor names one record inside a batch: pages of two through one message of five records
// return each once and in order, and a record is found again by its position.
func TestCursorInsideBatch(t *testing.T) {
	t.Parallel()
	nc, js := setup(t)
	log := openLog(t, nc, attempts.Options{Window: time.Hour})
	for i := range 5 {
		if err := log.Append("ep_a", "evt-1", []byte(fmt.Sprint("attempt ", i+1))); err != nil {
			t.Fatal(err)
		}
	}
	paged := pageAll(t, log, attempts.Query{EventID: "evt-1", Limit: 2})
	if got, want := fmt.Sprint(data(paged)), "[attempt 1 attempt 2 attempt 3 attempt 4 attempt 5]"; got != want {
		t.Fatalf("paged %s, want %s", got, want)
	}
	if n := streamInfo(t, js).State.Msgs; n != 1 {
		t.Errorf("5 records of one event in %d messages, want 1", n)
	}
	fourth := paged[3].Pos
	recs, _, err := log.List(t.Context(), attempts.Query{EndpointID: "ep_a", After: fourth - 1, Limit: 1})
	if err != nil || len(recs) != 1 || recs[0].Pos != fourth || string(recs[0].Data) != "attempt 4" {
		t.Errorf("record at %d: %+v (%v), want attempt 4", fourth, recs, err)
	}
}

// Tail is the cursor before the newest records, across batches; with 0 it follows what comes
// next.
func TestTail(t *testing.T) {
	t.Parallel()
	nc, _ := setup(t)
	log := openLog(t, nc, attempts.Options{Window: time.Hour})
	if c, err := log.Tail(t.Context(), 5); err != nil || c != 0 {
		t.Fatalf("empty log: tail %d (%v), want 0", c, err)
	}
	for i := range 6 { // two batches: what List publishes, then what comes later
		if i == 3 {
			if _, _, err := log.List(t.Context(), attempts.Query{Limit: 1}); err != nil {
				t.Fatal(err)
			}
		}
		if err := log.Append("ep_a", "evt-1", []byte(fmt.Sprint("r", i))); err != nil {
			t.Fatal(err)
		}
	}
	for n, want := range map[int]string{2: "[r4 r5]", 4: "[r2 r3 r4 r5]", 10: "[r0 r1 r2 r3 r4 r5]"} {
		c, err := log.Tail(t.Context(), n)
		if err != nil {
			t.Fatal(err)
		}
		recs, _, err := log.List(t.Context(), attempts.Query{After: c, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range recs {
			got = append(got, string(r.Data))
		}
		if fmt.Sprint(got) != want {
			t.Errorf("newest %d: %q, want %s", n, got, want)
		}
	}
	c, err := log.Tail(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := log.Append("ep_a", "evt-1", []byte("r6")); err != nil {
		t.Fatal(err)
	}
	if recs, _, err := log.List(t.Context(), attempts.Query{After: c, Limit: 10}); err != nil || len(recs) != 1 || string(recs[0].Data) != "r6" {
		t.Errorf("after the tail: %d records (%v), want r6 alone", len(recs), err)
	}
}

// A message of one record, as the log was written before batches, is read as a batch of one.
func TestReadsRecordsOfOneMessageEach(t *testing.T) {
	t.Parallel()
	nc, js := setup(t)
	log := openLog(t, nc, attempts.Options{})
	m := nats.NewMsg("quaycast.attempts.ep_a.7c")
	m.Data = []byte(`{"id":"att_1"}`)
	m.Header.Set("Quaycast-Event-Id", "evt-old")
	ack, err := js.PublishMsg(t.Context(), m)
	if err != nil {
		t.Fatal(err)
	}
	recs, _, err := log.List(t.Context(), attempts.Query{EndpointID: "ep_a", Limit: 10})
	if err != nil || len(recs) != 1 || string(recs[0].Data) != `{"id":"att_1"}` || recs[0].Pos != attempts.Position(ack.Sequence, 0) {
		t.Errorf("records %+v (%v), want the one at line 0 of message %d", recs, err, ack.Sequence)
	}
}

// Close publishes what is pending; a record that is not one line is refused, as a batch holds one
// per line.
func TestCloseAndRecordLines(t *testing.T) {
	t.Parallel()
	nc, js := setup(t)
	log := openLog(t, nc, attempts.Options{Window: time.Hour})
	for _, bad := range []string{"", "two\nlines"} {
		if err := log.Append("ep_a", "evt-1", []byte(bad)); !errors.Is(err, attempts.ErrNotOneLine) {
			t.Errorf("append %q: %v, want ErrNotOneLine", bad, err)
		}
	}
	if err := log.Append("ep_a", "evt-1", []byte("r1")); err != nil {
		t.Fatal(err)
	}
	log.Close(t.Context())
	if n := streamInfo(t, js).State.Msgs; n != 1 {
		t.Errorf("%d messages stored after Close, want the pending batch", n)
	}
	if err := log.Append("ep_a", "evt-2", []byte("r2")); err != nil { // published at once
		t.Fatal(err)
	}
	testwait.For(t, 10*time.Second, "a record appended after Close stored", func() bool { return streamInfo(t, js).State.Msgs == 2 })
}

// Records that cannot be published are told with their endpoint and count.
func TestDroppedRecordsAreTold(t *testing.T) {
	t.Parallel()
	nc, _ := setup(t)
	log := openLog(t, nc, attempts.Options{Window: 10 * time.Millisecond})
	var mu sync.Mutex
	dropped := map[string]int{}
	log.OnDropped(func(ep string, n int, err error) {
		mu.Lock()
		dropped[ep] += n
		mu.Unlock()
	})
	nc.Close()
	for i := range 3 {
		if err := log.Append("ep_a", fmt.Sprint("evt-", i), []byte("r")); err != nil {
			t.Fatal(err)
		}
	}
	testwait.For(t, 10*time.Second, "3 records of ep_a told as dropped", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return dropped["ep_a"] == 3
	})
}

// A batch that reaches its bound is published at once, without waiting for the window; all
// records are listed in order across the batches.
func TestFullBatchesArePublishedAtOnce(t *testing.T) {
	t.Parallel()
	nc, js := setup(t)
	log := openLog(t, nc, attempts.Options{Window: time.Hour})
	const records = 1100 // two full batches of 512 and 76 pending
	for i := range records {
		if err := log.Append("ep_a", "evt-1", []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	testwait.For(t, 10*time.Second, "two full batches stored", func() bool { return streamInfo(t, js).State.Msgs == 2 })
	got := data(pageAll(t, log, attempts.Query{EventID: "evt-1", Limit: 1000}))
	if len(got) != records {
		t.Fatalf("listed %d records, want %d", len(got), records)
	}
	for i, r := range got {
		if r != fmt.Sprint(i) {
			t.Fatalf("record %d is %q", i, r)
		}
	}
}
