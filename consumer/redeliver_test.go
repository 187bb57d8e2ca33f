package consumer_test

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/internal/testwait"
)

// perEntity splits the delivered calls into live events and redelivered copies, each as event
// ids per entity in delivery order.
func perEntity(calls []call, endpoint string) (live, redelivered map[string][]string) {
	live, redelivered = map[string][]string{}, map[string][]string{}
	for _, c := range calls {
		if c.endpoint != endpoint || c.result != consumer.Delivered {
			continue
		}
		if c.redelivery {
			redelivered[c.entity] = append(redelivered[c.entity], c.id)
		} else {
			live[c.entity] = append(live[c.entity], c.id)
		}
	}
	return live, redelivered
}

// A redeliver sends every event of the endpoint's subscription again, after a restart has read
// the durable delivery record back (which must not skip the copies), in their order per entity,
// marked as redeliveries, while live events published meanwhile go out once each and in order.
func TestRedeliverBesideLiveTraffic(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ep := e.createEndpoint(t, "cargo_loaded")
	marks := e.newMarks(t)
	o := consumer.Options{Marks: marks, ShutdownTimeout: time.Second}
	first := newRecorder(nil)
	m1 := startManager(t, e, first, o)
	old := e.publishAcross(t, 40, 4)
	e.publishEvent(t, event{id: "other-type", typ: "cargo_gated_in", entity: "MSCU0"}) // not subscribed: not redelivered
	testwait.For(t, 10*time.Second, "the first delivery", func() bool { return first.hasDelivered(ep.ID, old...) && e.drained(t, ep.ID) })
	m1.stop(t, 10*time.Second)

	rec := newRecorder(nil)
	startManager(t, e, rec, o) // its marks, read back, cover every old event
	var wg sync.WaitGroup
	var live []string
	wg.Go(func() {
		for i := range 40 {
			id := "live-" + strconv.Itoa(i)
			live = append(live, id)
			e.publishEvent(t, event{id: id, typ: "cargo_loaded", entity: "MSCU" + strconv.Itoa(i%4)})
		}
	})
	done, err := consumer.NewRedeliverer(e.js, e.stream).Redeliver(t.Context(), ep, consumer.RedeliverFrom{Seq: 1, Limit: consumer.MaxRedeliver})
	wg.Wait()
	if err != nil {
		t.Fatalf("redeliver: %v", err)
	}
	// Live events stored before the redeliver read the stream's end are redelivered too.
	if done.Copied < 40 || done.Copied != done.Scanned || done.NextSeq != 0 {
		t.Errorf("redeliver did %+v, want the 40 old events and no more than the live ones stored before it began, to the end", done)
	}
	testwait.For(t, 20*time.Second, "the copies and the live events", func() bool {
		l, r := perEntity(rec.snapshot(), ep.ID)
		n, m := 0, 0
		for _, ids := range l {
			n += len(ids)
		}
		for _, ids := range r {
			m += len(ids)
		}
		return n >= 40 && m >= done.Copied
	})
	gotLive, gotCopies := perEntity(rec.snapshot(), ep.ID)
	for k := range 4 {
		entity := "MSCU" + strconv.Itoa(k)
		var wantOld, wantLive []string
		for i := k; i < 40; i += 4 {
			wantOld = append(wantOld, old[i])
			wantLive = append(wantLive, live[i])
		}
		copies := gotCopies[entity]
		if len(copies) < len(wantOld) || len(copies) > len(wantOld)+len(wantLive) || !slices.Equal(copies, append(wantOld, wantLive[:len(copies)-len(wantOld)]...)) {
			t.Errorf("%s redelivered %v, want %v (and the first live ones, if any) once each in order", entity, copies, wantOld)
		}
		if !slices.Equal(gotLive[entity], wantLive) {
			t.Errorf("%s live %v, want %v once each in order", entity, gotLive[entity], wantLive)
		}
	}
	rec.checkNoOverlap(t)
}

// A redeliver picks by entity, by the time events were stored, and stops at its limit with the
// sequence to go on from; a request from beyond the stream's end copies nothing.
func TestRedeliverPicks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ep := e.createEndpoint(t, "cargo_loaded")
	rec := newRecorder(nil)
	startManager(t, e, rec, consumer.Options{ShutdownTimeout: time.Second})
	ids := e.publishAcross(t, 6, 2)
	time.Sleep(20 * time.Millisecond) // stored times: the next events strictly after since
	since := time.Now()
	time.Sleep(20 * time.Millisecond)
	var seqs []uint64
	for i := 6; i < 10; i++ {
		ids = append(ids, "evt-"+strconv.Itoa(i))
		seqs = append(seqs, e.publishEvent(t, event{id: ids[i], typ: "cargo_loaded", entity: "MSCU" + strconv.Itoa(i%2)}))
	}
	testwait.For(t, 10*time.Second, "the live delivery", func() bool { return rec.hasDelivered(ep.ID, ids...) })
	r := consumer.NewRedeliverer(e.js, e.stream)
	for _, tc := range []struct {
		name string
		from consumer.RedeliverFrom
		want consumer.Redelivered
		ids  []string // the copies delivered for this request
	}{
		{"one entity", consumer.RedeliverFrom{Seq: 1, Entities: []string{"MSCU1"}, Limit: 100}, consumer.Redelivered{Copied: 5, Scanned: 10}, []string{"evt-1", "evt-3", "evt-5", "evt-7", "evt-9"}},
		{"since a time", consumer.RedeliverFrom{Since: since, Limit: 100}, consumer.Redelivered{Copied: 4, Scanned: 4}, []string{"evt-6", "evt-7", "evt-8", "evt-9"}},
		{"to a limit", consumer.RedeliverFrom{Seq: seqs[0], Limit: 2}, consumer.Redelivered{Copied: 2, Scanned: 2, NextSeq: seqs[2]}, []string{"evt-6", "evt-7"}},
		{"beyond the end", consumer.RedeliverFrom{Seq: seqs[3] + 100, Limit: 100}, consumer.Redelivered{}, nil},
	} {
		before := len(rec.snapshot())
		got, err := r.Redeliver(context.Background(), ep, tc.from)
		if err != nil || got != tc.want {
			t.Errorf("%s: got %+v, %v; want %+v", tc.name, got, err, tc.want)
			continue
		}
		testwait.For(t, 10*time.Second, tc.name+": the copies delivered", func() bool { return len(rec.snapshot()) >= before+len(tc.ids) })
		var copies []string
		for _, c := range rec.snapshot()[before:] {
			if c.redelivery {
				copies = append(copies, c.id)
			}
		}
		slices.Sort(copies)
		if !slices.Equal(copies, tc.ids) {
			t.Errorf("%s: copies delivered %v, want %v", tc.name, copies, tc.ids)
		}
	}
}
