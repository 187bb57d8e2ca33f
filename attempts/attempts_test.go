package attempts_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quaycast/quaycast/attempts"
	"github.com/quaycast/quaycast/consumer/natstest"
	"github.com/quaycast/quaycast/internal/testwait"
	"github.com/quaycast/quaycast/subjects"
)

func setup(t *testing.T) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, js := natstest.ConnectJetStream(t, natstest.Start(t))
	if err := attempts.Setup(t.Context(), js, attempts.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	return nc, js
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
	log, err := attempts.New(t.Context(), nc)
	if err != nil {
		t.Fatal(err)
	}
	// Ids with characters a subject token cannot hold are encoded, not mixed up.
	eps, evs := []string{"ep_a", "ep.b"}, []string{"evt 1", "evt-2", "evt-3"}
	for _, ep := range eps {
		for _, ev := range evs {
			if err := log.Append(ep, ev, []byte(ep+"|"+ev)); err != nil {
				t.Fatal(err)
			}
		}
	}
	all := func(q attempts.Query) []string {
		t.Helper()
		var got []string
		for range 10 {
			recs, next, err := log.List(t.Context(), q)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				got = append(got, string(r.Data))
			}
			if next == 0 {
				return got
			}
			q.After = next
		}
		t.Fatal("more than 10 pages")
		return nil
	}
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

// An endpoint's records share 256 subjects, whatever the number of events (the server indexes
// every subject for as long as the log keeps it); a query for one event still gets its records
// alone, though 600 events share the buckets.
func TestRecordsShareBoundedSubjects(t *testing.T) {
	t.Parallel()
	nc, _ := setup(t)
	log, err := attempts.New(t.Context(), nc)
	if err != nil {
		t.Fatal(err)
	}
	const events = 600
	for i := range events {
		ev := fmt.Sprintf("evt-%d", i)
		if err := log.Append("ep_a", ev, []byte(ev)); err != nil {
			t.Fatal(err)
		}
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(t.Context(), attempts.LogStream)
	if err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 10*time.Second, "every record stored", func() bool {
		info, err := stream.Info(t.Context())
		return err == nil && info.State.Msgs == events
	})
	info, err := stream.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if n := info.State.NumSubjects; n > 256 {
		t.Errorf("%d events made %d subjects, want at most 256", events, n)
	}
	for _, i := range []int{0, 1, 299, 599} {
		ev := fmt.Sprintf("evt-%d", i)
		recs, _, err := log.List(t.Context(), attempts.Query{EndpointID: "ep_a", EventID: ev, Limit: 10})
		if err != nil || len(recs) != 1 || string(recs[0].Data) != ev {
			t.Errorf("records of %s: %d (%v), want its one", ev, len(recs), err)
		}
	}
}
