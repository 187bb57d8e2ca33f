package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/attempts"
	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/consumer/natstest"
	"github.com/quaycast/quaycast/gateway"
	"github.com/quaycast/quaycast/internal/fielderr"
	"github.com/quaycast/quaycast/natsauth"
	"github.com/quaycast/quaycast/service"
	"github.com/quaycast/quaycast/subjects"
	"github.com/quaycast/quaycast/tokens"
)

const adminToken = "admin-0123456789abcdef"

// testSender is the delivery side of these tests: it records what the service asks of it, and
// answers a test send with the delivery it was given.
type testSender struct {
	mu     sync.Mutex
	tests  []*consumer.Delivery
	forgot []string
}

func (s *testSender) Test(_ context.Context, d *consumer.Delivery) (json.RawMessage, error) {
	s.mu.Lock()
	s.tests = append(s.tests, d)
	s.mu.Unlock()
	return json.Marshal(map[string]string{"event_id": d.Event.ID, "type": d.Event.Type, "entity": d.Event.Entity, "outcome": "delivered"})
}

func (s *testSender) Breaker(string) (service.BreakerStatus, bool) {
	return service.BreakerStatus{State: "closed"}, false
}

func (s *testSender) Forget(id string) {
	s.mu.Lock()
	s.forgot = append(s.forgot, id)
	s.mu.Unlock()
}

// rules are the gateway's target policy (nothing allow-listed: loopback is refused) and a header
// rule that refuses X-Sender-Owned, as the sender's rules refuse the headers it writes.
type rules struct{ gateway.TargetPolicy }

func (rules) CheckHeaders(ep *consumer.Endpoint) error {
	if _, ok := ep.Headers["X-Sender-Owned"]; ok {
		return &fielderr.Error{Field: "headers.X-Sender-Owned", Reason: "is set by the sender"}
	}
	return nil
}

type states struct{}

func (states) State(string) string                       { return consumer.StateStopped }
func (states) Stuck(string) consumer.Stuck               { return consumer.Stuck{} }
func (states) WaitApplied(context.Context, uint64) error { return nil }
func (states) Conditions(string) consumer.ConditionStats { return consumer.ConditionStats{} }

// rig is a service over a real embedded JetStream server with quaycast's streams and buckets.
type rig struct {
	svc    *service.Service
	sender *testSender
	reg    *consumer.Registry
}

// newRig starts NATS and the service; external leaves publishers out, as with --nats-url.
func newRig(t *testing.T, admin string, external bool) *rig {
	t.Helper()
	ctx := t.Context()
	srv := natstest.Start(t)
	nc, js := natstest.ConnectJetStream(t, srv)
	events, kv, err := consumer.Setup(ctx, js, consumer.StreamOptions{MaxAge: time.Hour, Duplicates: time.Minute, MaxConsumers: 100})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := consumer.NewRegistry(kv, events, consumer.RegistryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	toks, err := tokens.New(ctx, js, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	dead, err := consumer.NewDeadLetters(ctx, js, events)
	if err != nil {
		t.Fatal(err)
	}
	if err := attempts.Setup(ctx, js, attempts.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	attemptLog, err := attempts.New(ctx, nc, attempts.Options{})
	if err != nil {
		t.Fatal(err)
	}
	log := zerolog.New(zerolog.NewTestWriter(t))
	d := service.Deps{
		Registry: reg, DeadLetters: dead, Attempts: attemptLog, Tokens: toks,
		Sender: &testSender{}, Rules: rules{}, States: states{}, AdminToken: admin, Log: log,
	}
	if !external {
		if d.Publishers, err = natsauth.NewPublishers(ctx, js, 1, nil); err != nil {
			t.Fatal(err)
		}
		d.NATSAuth = natsauth.NewEmbedded("internal-token", log)
		if err := d.NATSAuth.Attach(srv); err != nil {
			t.Fatal(err)
		}
	}
	return &rig{svc: service.New(d), sender: d.Sender.(*testSender), reg: reg}
}

// tokenCaller is the caller presenting a new token with scopes.
func (r *rig) tokenCaller(t *testing.T, scopes ...string) service.Caller {
	t.Helper()
	secret, _, err := r.svc.CreateToken(t.Context(), service.Admin(), service.TokenInput{Name: "test", Scopes: scopes})
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.svc.Authenticate(t.Context(), secret)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (r *rig) addEndpoint(t *testing.T, types ...string) *service.Endpoint {
	t.Helper()
	ep, err := r.svc.CreateEndpoint(t.Context(), service.Admin(), service.EndpointInput{URL: ptr("http://192.0.2.10/hook"), EventTypes: &types})
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

func ptr[T any](v T) *T { return &v }

func wantForbidden(t *testing.T, err error, scope string) {
	t.Helper()
	var fb *service.ForbiddenError
	if !errors.As(err, &fb) || fb.Scope != scope {
		t.Errorf("got %v, want a ForbiddenError for scope %s", err, scope)
	}
}

func wantField(t *testing.T, err error, field string) {
	t.Helper()
	var fe *fielderr.Error
	if !errors.As(err, &fe) || fe.Field != field {
		t.Errorf("got %v, want a field error naming %s", err, field)
	}
}

func wantNotFound(t *testing.T, err error, kind string) {
	t.Helper()
	var nf *service.NotFoundError
	if !errors.As(err, &nf) || nf.Kind != kind {
		t.Errorf("got %v, want a NotFoundError of a %s", err, kind)
	}
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	r := newRig(t, adminToken, false)
	ctx := t.Context()
	if _, err := r.svc.Authenticate(ctx, ""); !errors.Is(err, service.ErrNoToken) {
		t.Errorf("no token: %v, want ErrNoToken", err)
	}
	for _, bad := range []string{"nope", adminToken + "x", "qct_0123456789abcdef0123_secret"} {
		if _, err := r.svc.Authenticate(ctx, bad); !errors.Is(err, service.ErrBadToken) {
			t.Errorf("token %q: %v, want ErrBadToken", bad, err)
		}
	}
	admin, err := r.svc.Authenticate(ctx, adminToken)
	if err != nil || admin != service.Admin() {
		t.Errorf("admin token: %v %v, want the admin", admin, err)
	}

	secret, tok, err := r.svc.CreateToken(ctx, admin, service.TokenInput{Name: "reader", Scopes: []string{service.ScopeEndpointsRead}})
	if err != nil {
		t.Fatal(err)
	}
	reader, err := r.svc.Authenticate(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.Endpoints(ctx, reader); err != nil {
		t.Errorf("reader lists endpoints: %v", err)
	}
	// Revoked here: refused at once, though the token was just checked (and cached).
	if err := r.svc.RevokeToken(ctx, admin, tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.Authenticate(ctx, secret); !errors.Is(err, service.ErrBadToken) {
		t.Errorf("revoked token: %v, want ErrBadToken", err)
	}
}

// Without an admin token the API has no access control: every caller is the admin.
func TestNoAccessControl(t *testing.T) {
	t.Parallel()
	r := newRig(t, "", false)
	for _, presented := range []string{"", "anything"} {
		c, err := r.svc.Authenticate(t.Context(), presented)
		if err != nil || c != service.Admin() {
			t.Errorf("token %q: %v %v, want the admin", presented, c, err)
		}
	}
}

// Every operation checks its caller itself, whichever front end calls it: a token without the
// scope is refused before anything is read or changed.
func TestOperationsAuthorizeTheirCaller(t *testing.T) {
	t.Parallel()
	r := newRig(t, adminToken, false)
	ctx := t.Context()
	ep := r.addEndpoint(t, "cargo_loaded")
	reader := r.tokenCaller(t, service.ScopeEndpointsRead)
	writer := r.tokenCaller(t, service.ScopeEndpointsWrite)
	all := r.tokenCaller(t, service.Scopes...)

	_, err := r.svc.CreateEndpoint(ctx, reader, service.EndpointInput{URL: ptr("http://192.0.2.11/"), EventTypes: &[]string{"*"}})
	wantForbidden(t, err, service.ScopeEndpointsWrite)
	_, err = r.svc.PatchEndpoint(ctx, reader, ep.ID, service.EndpointInput{Enabled: ptr(false)})
	wantForbidden(t, err, service.ScopeEndpointsWrite)
	_, err = r.svc.RotateSecret(ctx, reader, ep.ID, service.RotateInput{})
	wantForbidden(t, err, service.ScopeEndpointsWrite)
	_, err = r.svc.TestSend(ctx, reader, ep.ID, service.TestInput{})
	wantForbidden(t, err, service.ScopeEndpointsWrite)
	wantForbidden(t, r.svc.DeleteEndpoint(ctx, writer, ep.ID), service.ScopeEndpointsDelete)
	wantForbidden(t, r.svc.PurgeDeadLetters(ctx, writer, ep.ID), service.ScopeEndpointsDelete)
	_, err = r.svc.ReplayDeadLetters(ctx, reader, ep.ID, service.ReplayInput{})
	wantForbidden(t, err, service.ScopeEndpointsWrite)
	_, err = r.svc.EndpointDeliveries(ctx, reader, ep.ID, service.DeliveryFilter{})
	wantForbidden(t, err, service.ScopeDeliveriesRead)
	_, err = r.svc.EventDeliveries(ctx, reader, "ev-1", service.DeliveryFilter{})
	wantForbidden(t, err, service.ScopeDeliveriesRead)
	_, err = r.svc.DeadLetters(ctx, reader, ep.ID, service.Page{})
	wantForbidden(t, err, service.ScopeDeliveriesRead)
	_, err = r.svc.Endpoints(ctx, writer)
	wantForbidden(t, err, service.ScopeEndpointsRead)
	_, err = r.svc.Endpoint(ctx, service.Caller{}, ep.ID)
	wantForbidden(t, err, service.ScopeEndpointsRead)

	// Tokens and publishers are the admin's alone, whatever scopes a token holds.
	_, _, err = r.svc.CreateToken(ctx, all, service.TokenInput{Name: "escalate", Scopes: service.Scopes})
	wantForbidden(t, err, service.ScopeAdmin)
	_, err = r.svc.Tokens(ctx, all)
	wantForbidden(t, err, service.ScopeAdmin)
	wantForbidden(t, r.svc.RevokeToken(ctx, all, "tok_0123456789abcdef0123"), service.ScopeAdmin)
	_, _, err = r.svc.CreatePublisher(ctx, all, service.PublisherInput{Name: "tos", Sources: []string{"tos"}})
	wantForbidden(t, err, service.ScopeAdmin)
	_, err = r.svc.Publishers(ctx, all)
	wantForbidden(t, err, service.ScopeAdmin)
	wantForbidden(t, r.svc.RevokePublisher(ctx, all, "pub_0123456789abcdef0123"), service.ScopeAdmin)

	// Nothing was changed: one endpoint, as created, still enabled; the two test tokens and the
	// all-scopes one, no more.
	got, err := r.svc.Endpoint(ctx, all, ep.ID)
	if err != nil || !got.Enabled || got.UpdatedAt != ep.UpdatedAt {
		t.Errorf("endpoint after refused changes: %+v %v, want it unchanged", got, err)
	}
	if eps, err := r.svc.Endpoints(ctx, all); err != nil || len(eps) != 1 {
		t.Errorf("%d endpoints (%v), want 1", len(eps), err)
	}
	if ts, err := r.svc.Tokens(ctx, service.Admin()); err != nil || len(ts) != 3 {
		t.Errorf("%d tokens (%v), want 3", len(ts), err)
	}
	if n := len(r.sender.tests); n != 0 {
		t.Errorf("%d test sends made, want none", n)
	}

	// With the scope, the same calls go through.
	if _, err := r.svc.PatchEndpoint(ctx, writer, ep.ID, service.EndpointInput{Description: ptr("by the writer")}); err != nil {
		t.Errorf("writer patches: %v", err)
	}
	if err := r.svc.DeleteEndpoint(ctx, all, ep.ID); err != nil {
		t.Errorf("delete with endpoints:delete: %v", err)
	}
	if len(r.sender.forgot) != 1 || r.sender.forgot[0] != ep.ID {
		t.Errorf("sender told to forget %v, want [%s]", r.sender.forgot, ep.ID)
	}
}

// With an external NATS quaycast mints no publisher credentials: a conflict, even for the admin
// (and still forbidden to a token, which learns nothing more).
func TestPublishersWithExternalNATS(t *testing.T) {
	t.Parallel()
	r := newRig(t, adminToken, true)
	ctx := t.Context()
	var cf *service.ConflictError
	if _, _, err := r.svc.CreatePublisher(ctx, service.Admin(), service.PublisherInput{Name: "tos", Sources: []string{"tos"}}); !errors.As(err, &cf) {
		t.Errorf("create: %v, want a ConflictError", err)
	}
	if _, err := r.svc.Publishers(ctx, service.Admin()); !errors.As(err, &cf) {
		t.Errorf("list: %v, want a ConflictError", err)
	}
	if err := r.svc.RevokePublisher(ctx, service.Admin(), "pub_0123456789abcdef0123"); !errors.As(err, &cf) {
		t.Errorf("revoke: %v, want a ConflictError", err)
	}
	_, err := r.svc.Publishers(ctx, r.tokenCaller(t, service.Scopes...))
	wantForbidden(t, err, service.ScopeAdmin)
}

func TestEndpointValidation(t *testing.T) {
	t.Parallel()
	r := newRig(t, "", false)
	ctx := t.Context()
	admin := service.Admin()
	types := &[]string{"cargo_loaded"}
	ok := "http://192.0.2.10/hook"

	creates := []struct {
		name      string
		in        service.EndpointInput
		wantField string
	}{
		{"no url", service.EndpointInput{EventTypes: types}, "url"},
		{"no event types", service.EndpointInput{URL: &ok}, "event_types"},
		{"unknown event type", service.EndpointInput{URL: &ok, EventTypes: &[]string{"cargo_teleported"}}, "event_types[0]"},
		{"loopback target", service.EndpointInput{URL: ptr("http://127.0.0.1:8080/"), EventTypes: types}, "url"},
		{"metadata host", service.EndpointInput{URL: ptr("http://metadata.google.internal/"), EventTypes: types}, "url"},
		{"header the sender writes", service.EndpointInput{URL: &ok, EventTypes: types, Headers: &map[string]string{"X-Sender-Owned": "1"}}, "headers.X-Sender-Owned"},
		{"unknown profile", service.EndpointInput{URL: &ok, EventTypes: types, Signing: &service.SigningInput{Profile: "md5"}}, "signing.profile"},
		{"bad hex case", service.EndpointInput{URL: &ok, EventTypes: types, Signing: &service.SigningInput{Profile: "hex", HexCase: "mixed"}}, "signing.hex_case"},
		{"secret too short", service.EndpointInput{URL: &ok, EventTypes: types, Secret: ptr("whsec_short")}, "secret"},
	}
	for _, tc := range creates {
		t.Run("create "+tc.name, func(t *testing.T) {
			_, err := r.svc.CreateEndpoint(ctx, admin, tc.in)
			wantField(t, err, tc.wantField)
		})
	}
	if eps, err := r.svc.Endpoints(ctx, admin); err != nil || len(eps) != 0 {
		t.Fatalf("%d endpoints stored (%v) after invalid creates, want none", len(eps), err)
	}

	ep := r.addEndpoint(t, "cargo_loaded")
	if ep.Secret == "" {
		t.Error("create returned no secret")
	}
	_, err := r.svc.PatchEndpoint(ctx, admin, ep.ID, service.EndpointInput{Secret: ptr("whsec_x")})
	wantField(t, err, "secret")
	_, err = r.svc.PatchEndpoint(ctx, admin, ep.ID, service.EndpointInput{URL: ptr("http://10.1.2.3/")})
	wantField(t, err, "url")
	_, err = r.svc.PatchEndpoint(ctx, admin, ep.ID, service.EndpointInput{EventTypes: &[]string{}})
	wantField(t, err, "event_types")
	_, err = r.svc.PatchEndpoint(ctx, admin, "ep_doesnotexist", service.EndpointInput{Enabled: ptr(false)})
	wantNotFound(t, err, "endpoint")
	_, err = r.svc.RotateSecret(ctx, admin, ep.ID, service.RotateInput{Grace: "forever"})
	wantField(t, err, "grace")
	_, err = r.svc.RotateSecret(ctx, admin, ep.ID, service.RotateInput{Grace: "721h"})
	wantField(t, err, "grace")
	_, err = r.svc.RotateSecret(ctx, admin, "ep_doesnotexist", service.RotateInput{})
	wantNotFound(t, err, "endpoint")
	_, err = r.svc.Endpoint(ctx, admin, "../x")
	wantNotFound(t, err, "endpoint")
	wantNotFound(t, r.svc.DeleteEndpoint(ctx, admin, "ep_doesnotexist"), "endpoint")

	got, err := r.svc.Endpoint(ctx, admin, ep.ID)
	if err != nil || got.URL != ok || len(got.EventTypes) != 1 || got.Secret != "" || got.Breaker.State != "closed" {
		t.Errorf("endpoint after refused patches: %+v %v, want it as created, its secret not shown", got, err)
	}

	// A URL saved before a check covered its form is flagged, and enabling it asks for a new one.
	saved, err := r.reg.Update(ctx, ep.ID, func(e *consumer.Endpoint) error { e.URL, e.Enabled = "http://127.0.0.1:9/", false; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if list, _ := r.svc.Endpoints(ctx, admin); len(list) != 1 || list[0].TargetError == "" {
		t.Errorf("listed %+v, want the loopback URL flagged with a target error", list)
	}
	_, err = r.svc.PatchEndpoint(ctx, admin, saved.ID, service.EndpointInput{Enabled: ptr(true)})
	var fe *fielderr.Error
	if !errors.As(err, &fe) || fe.Field != "url" || !strings.Contains(fe.Reason, "change the url to enable the endpoint") {
		t.Errorf("enabling an endpoint with a refused URL: %v, want a field error asking for a new url", err)
	}
}

func TestDeliveryQueriesValidation(t *testing.T) {
	t.Parallel()
	r := newRig(t, "", false)
	ctx := t.Context()
	admin := service.Admin()
	ep := r.addEndpoint(t, "*")
	filters := []struct {
		name      string
		f         service.DeliveryFilter
		wantField string
	}{
		{"limit zero", service.DeliveryFilter{Page: service.Page{Limit: "0"}}, "limit"},
		{"limit too large", service.DeliveryFilter{Page: service.Page{Limit: "1001"}}, "limit"},
		{"after not a cursor", service.DeliveryFilter{Page: service.Page{After: "-1"}}, "after"},
		{"since not a time", service.DeliveryFilter{Since: "yesterday"}, "since"},
		{"until not a time", service.DeliveryFilter{Until: "2026-13-01T00:00:00Z"}, "until"},
		{"unknown status", service.DeliveryFilter{Status: "lost"}, "status"},
		{"status out of range", service.DeliveryFilter{Status: "99"}, "status"},
	}
	for _, tc := range filters {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.svc.EndpointDeliveries(ctx, admin, ep.ID, tc.f)
			wantField(t, err, tc.wantField)
			_, err = r.svc.EventDeliveries(ctx, admin, "ev-1", tc.f)
			wantField(t, err, tc.wantField)
		})
	}
	_, err := r.svc.EventDeliveries(ctx, admin, "two words", service.DeliveryFilter{})
	wantField(t, err, "id")
	_, err = r.svc.DeadLetters(ctx, admin, ep.ID, service.Page{Limit: "x"})
	wantField(t, err, "limit")
	_, err = r.svc.EndpointDeliveries(ctx, admin, "ep_doesnotexist", service.DeliveryFilter{})
	wantNotFound(t, err, "endpoint")
	_, err = r.svc.DeadLetters(ctx, admin, "ep_doesnotexist", service.Page{})
	wantNotFound(t, err, "endpoint")

	page, err := r.svc.EndpointDeliveries(ctx, admin, ep.ID, service.DeliveryFilter{Status: "delivered", Page: service.Page{Limit: "10"}})
	if err != nil || len(page.Deliveries) != 0 || page.NextCursor != "" {
		t.Errorf("an empty log: %+v %v, want an empty last page", page, err)
	}
}

func TestTestSend(t *testing.T) {
	t.Parallel()
	r := newRig(t, "", false)
	ctx := t.Context()
	ep := r.addEndpoint(t, "group:gate")
	_, err := r.svc.TestSend(ctx, service.Admin(), ep.ID, service.TestInput{Type: "cargo_loaded"})
	wantField(t, err, "type")
	_, err = r.svc.TestSend(ctx, service.Admin(), ep.ID, service.TestInput{Data: json.RawMessage(`[1]`)})
	wantField(t, err, "data")
	_, err = r.svc.TestSend(ctx, service.Admin(), "ep_doesnotexist", service.TestInput{})
	wantNotFound(t, err, "endpoint")
	if n := len(r.sender.tests); n != 0 {
		t.Fatalf("%d refused test sends reached the sender, want none", n)
	}

	raw, err := r.svc.TestSend(ctx, service.Admin(), ep.ID, service.TestInput{})
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Type, Entity string }
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	first, _ := subjects.Expand([]string{"group:gate"})
	if got.Type != first[0] || got.Entity != "TEST0000001" {
		t.Errorf("test send of %+v, want the endpoint's first type %s and the test entity", got, first[0])
	}
	if d := r.sender.tests[0]; d.Endpoint.ID != ep.ID || d.Attempt != 1 || !json.Valid(d.Body) {
		t.Errorf("delivery %+v: want the endpoint's, attempt 1, a JSON body", d)
	}
}

func TestTokensAndPublishersValidation(t *testing.T) {
	t.Parallel()
	r := newRig(t, adminToken, false)
	ctx := t.Context()
	admin := service.Admin()
	_, _, err := r.svc.CreateToken(ctx, admin, service.TokenInput{Scopes: []string{service.ScopeEndpointsRead}})
	wantField(t, err, "name")
	_, _, err = r.svc.CreateToken(ctx, admin, service.TokenInput{Name: "ci"})
	wantField(t, err, "scopes")
	_, _, err = r.svc.CreateToken(ctx, admin, service.TokenInput{Name: "ci", Scopes: []string{service.ScopeEndpointsRead, service.ScopeAdmin}})
	wantField(t, err, "scopes[1]")
	wantNotFound(t, r.svc.RevokeToken(ctx, admin, "tok_nothex"), "token")
	wantNotFound(t, r.svc.RevokeToken(ctx, admin, "tok_0123456789abcdef0123"), "token")
	if ts, err := r.svc.Tokens(ctx, admin); err != nil || len(ts) != 0 {
		t.Errorf("%d tokens (%v) after refused creates, want none", len(ts), err)
	}

	_, _, err = r.svc.CreatePublisher(ctx, admin, service.PublisherInput{Sources: []string{"tos"}})
	wantField(t, err, "name")
	_, _, err = r.svc.CreatePublisher(ctx, admin, service.PublisherInput{Name: "tos", Sources: []string{"T.O.S"}})
	wantField(t, err, "sources[0]")
	wantNotFound(t, r.svc.RevokePublisher(ctx, admin, "pub_x"), "publisher")
	wantNotFound(t, r.svc.RevokePublisher(ctx, admin, "pub_0123456789abcdef0123"), "publisher")

	cred, p, err := r.svc.CreatePublisher(ctx, admin, service.PublisherInput{Name: "tos", Sources: []string{"tos"}})
	if err != nil || cred == "" {
		t.Fatalf("create publisher: %q %v", cred, err)
	}
	if ps, err := r.svc.Publishers(ctx, admin); err != nil || len(ps) != 1 || ps[0].ID != p.ID {
		t.Errorf("publishers %v (%v), want the one created", ps, err)
	}
	if err := r.svc.RevokePublisher(ctx, admin, p.ID); err != nil {
		t.Errorf("revoke: %v", err)
	}
}
