package consumer_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/internal/testwait"
	"github.com/quaycast/quaycast/subjects"
)

// An endpoint's condition sends only the events it takes. The others are acknowledged without a
// POST and counted — an evaluation that fails apart — and the previous-event id passes over
// them; an endpoint without a condition gets everything.
func TestConditionSendsOnlyWhatItTakes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	cold, err := e.reg.Create(ctx, consumer.Endpoint{URL: "http://127.0.0.1:9/hook", EventTypes: []string{"*"}, Enabled: true,
		Secret: consumer.NewSecret("whsec_test"), Condition: `data.reefer.setpoint < -18`})
	if err != nil {
		t.Fatal(err)
	}
	all := e.createEndpoint(t, "*")
	rec := newRecorder(nil)
	var mu sync.Mutex
	var counted []string
	m := newManager(t, e, rec, consumer.Options{})
	m.OnCondition(func(id string, err error) {
		mu.Lock()
		counted = append(counted, fmt.Sprintf("%s:%v", id, err != nil))
		mu.Unlock()
	})
	m.start(t)

	publish := func(id, data string) {
		body := fmt.Sprintf(`{"id":%q,"type":"reefer_plugged_in","source":"tos","entity":"C1","occurred_at":"2026-11-23T10:00:00Z","data":%s}`, id, data)
		e.publishRaw(t, "evt.tos.reefer_plugged_in", []byte(body), map[string]string{subjects.HeaderMsgID: id})
	}
	publish("r1", `{"reefer":{"setpoint":-20}}`)
	publish("r2", `{"reefer":{"setpoint":4}}`) // not taken
	publish("r3", `{"gate":"G3"}`)             // no reefer: an evaluation error, not taken
	publish("r4", `{"reefer":{"setpoint":-25.5}}`)

	testwait.For(t, 20*time.Second, "both endpoints drained", func() bool {
		return rec.hasDelivered(all.ID, "r1", "r2", "r3", "r4") && rec.hasDelivered(cold.ID, "r1", "r4") && e.drained(t, cold.ID) && e.drained(t, all.ID)
	})
	if got := rec.delivered(cold.ID); !slices.Equal(got, []string{"r1", "r4"}) {
		t.Errorf("the endpoint with a condition got %v, want [r1 r4]", got)
	}
	if c := rec.callsFor(cold.ID, "r4"); len(c) != 1 || c[0].previous != "r1" {
		t.Errorf("r4's previous event: %+v, want r1 (r2 and r3 were never sent)", c)
	}
	if c := rec.callsFor(all.ID, "r4"); len(c) != 1 || c[0].previous != "r3" {
		t.Errorf("without a condition r4's previous event: %+v, want r3", c)
	}
	st := m.Conditions(cold.ID)
	if st.Skipped != 2 || st.Errors != 1 || !strings.Contains(st.LastError, "reefer") {
		t.Errorf("condition figures %+v, want 2 skipped, 1 of them an error about reefer", st)
	}
	if st := m.Conditions(all.ID); st != (consumer.ConditionStats{}) {
		t.Errorf("no condition, yet figures %+v", st)
	}

	// A new condition applies to the next events.
	if _, err := e.reg.Update(ctx, cold.ID, func(x *consumer.Endpoint) error { x.Condition = `entity == "C2"`; return nil }); err != nil {
		t.Fatal(err)
	}
	updated, _ := e.reg.Get(ctx, cold.ID)
	if err := m.WaitApplied(ctx, updated.Revision); err != nil {
		t.Fatal(err)
	}
	publish("r5", `{"reefer":{"setpoint":-30}}`)
	testwait.For(t, 20*time.Second, "r5 handled", func() bool { return rec.hasDelivered(all.ID, "r5") && e.drained(t, cold.ID) })
	if got := rec.delivered(cold.ID); !slices.Equal(got, []string{"r1", "r4"}) {
		t.Errorf("after the change the endpoint got %v, want still [r1 r4]", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{cold.ID + ":false", cold.ID + ":true", cold.ID + ":false"}; !slices.Equal(counted, want) {
		t.Errorf("OnCondition calls %v, want %v (r2 no, r3 an error, r5 no)", counted, want)
	}
}

// A condition that does not compile is refused when the endpoint is saved, naming the field and
// where the expression is wrong.
func TestConditionValidated(t *testing.T) {
	t.Parallel()
	ep := validEndpoint()
	ep.Condition = `data.setpoint < -18 && entty == "C1"`
	err := ep.Validate()
	if err == nil || !strings.Contains(err.Error(), "condition: 1:24: undeclared reference to 'entty'") {
		t.Fatalf("got %v", err)
	}
}
