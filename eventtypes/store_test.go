package eventtypes_test

import (
	"errors"
	"testing"

	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/consumer/natstest"
	"github.com/quaycast/quaycast/eventtypes"
	"github.com/quaycast/quaycast/internal/fielderr"
	"github.com/quaycast/quaycast/subjects"
)

const envelope = `{"id":"e1","type":"reefer_alarm","source":"tos","entity":"MSCU1","occurred_at":"2026-11-23T10:00:00Z","data":{}}`

// A gateway whose catalogue predates a type added elsewhere does not refuse it: the check reads
// the bucket again first. Here the second store follows nothing (no Run), so only that read can
// find the type.
func TestStaleCatalogueReadsAgainBeforeRefusing(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	_, js := natstest.ConnectJetStream(t, srv)
	ctx := t.Context()
	here, err := eventtypes.Open(ctx, js, 1, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	elsewhere, err := eventtypes.Open(ctx, js, 1, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := elsewhere.Create(ctx, subjects.EventType{Name: "reefer_alarm", Title: "Reefer Alarm", Group: "reefer"}); err != nil {
		t.Fatal(err)
	}
	if _, err := here.Current().ParseEnvelope([]byte(envelope)); !errors.Is(err, subjects.ErrUnknownType) {
		t.Fatalf("the stale catalogue: %v, want an unknown type (else this test proves nothing)", err)
	}
	env, err := consumer.WithCatalogue(ctx, here, func(c *subjects.Catalogue) (subjects.Envelope, error) { return c.ParseEnvelope([]byte(envelope)) })
	if err != nil || env.Type != "reefer_alarm" {
		t.Fatalf("after reading again: %v %v", env, err)
	}
	if et, _ := here.Current().Lookup("reefer_alarm"); et.Title != "Reefer Alarm" || et.System != subjects.SystemCustom {
		t.Errorf("the type as read: %+v", et)
	}
	// The group's selector covers it, and a type still unknown after the read is refused.
	if got, _ := here.Current().Expand([]string{"group:reefer"}); len(got) != 3 {
		t.Errorf("group:reefer covers %v, want the two built-in reefer types and reefer_alarm", got)
	}
	if _, err := consumer.WithCatalogue(ctx, here, func(c *subjects.Catalogue) (subjects.Envelope, error) {
		return c.ParseEnvelope([]byte(`{"id":"e2","type":"nope","source":"tos","entity":"M","occurred_at":"2026-11-23T10:00:00Z","data":{}}`))
	}); !errors.Is(err, subjects.ErrUnknownType) {
		t.Errorf("an unknown type: %v", err)
	}

	for _, tc := range []struct {
		t    subjects.EventType
		want error
	}{
		{subjects.EventType{Name: "cargo_loaded", Title: "x", Group: "cargo"}, eventtypes.ErrBuiltin},
		{subjects.EventType{Name: "reefer_alarm", Title: "x", Group: "reefer"}, eventtypes.ErrExists},
		{subjects.EventType{Name: "breaker_opened", Title: "x", Group: "g"}, eventtypes.ErrBuiltin},
	} {
		if _, err := here.Create(ctx, tc.t); !errors.Is(err, tc.want) {
			t.Errorf("Create(%s): %v, want %v", tc.t.Name, err, tc.want)
		}
	}
	var fe *fielderr.Error
	if _, err := here.Create(ctx, subjects.EventType{Name: "ok_name", Title: "", Group: "g"}); !errors.As(err, &fe) || fe.Field != "title" {
		t.Errorf("no title: %v", err)
	}
	if _, err := here.Create(ctx, subjects.EventType{Name: "ok_name", Title: "x", Group: subjects.OpsGroup}); !errors.As(err, &fe) || fe.Field != "group" {
		t.Errorf("the operator events' group: %v", err)
	}
	if err := here.Delete(ctx, "cargo_loaded"); !errors.Is(err, eventtypes.ErrBuiltin) {
		t.Errorf("delete a built-in type: %v", err)
	}
	if err := elsewhere.Delete(ctx, "reefer_alarm"); err != nil {
		t.Fatal(err)
	}
	// A deleted type stays known until the catalogue is read again (the watch does it).
	cat, err := here.Refresh(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cat.ParseEnvelope([]byte(envelope)); !errors.Is(err, subjects.ErrUnknownType) {
		t.Errorf("a deleted type, read again: %v, want unknown", err)
	}
}
