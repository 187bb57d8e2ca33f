package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/propagation"

	"github.com/quaycast/quaycast/cluster"
	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/gateway/signature"
	"github.com/quaycast/quaycast/internal/fielderr"
	"github.com/quaycast/quaycast/portal"
	"github.com/quaycast/quaycast/service"
	"github.com/quaycast/quaycast/subjects"
)

// maxAPIBody bounds request bodies of the management API (the ingest API takes MaxEventBytes).
const maxAPIBody = 64 << 10

// api serves the JSON API: the operator's operations (through the service, which authorizes
// them), event ingest, health and metrics.
type api struct {
	svc     *service.Service
	js      jetstream.JetStream // ingest
	types   consumer.Catalogue  // ingest's type check
	nc      *nats.Conn          // readiness
	manager *consumer.Manager   // readiness
	metrics *metrics
	cluster *cluster.Supervisor // nil unless clustered
	log     zerolog.Logger

	readTimeout time.Duration // to read a request's body; 0: defaultReadTimeout
	postTimeout time.Duration // of a test send's POST, which the answer waits for
	console     http.Handler  // the web console under /ui/; nil: none
	publicURL   string        // --public-url: where portal links start; "": the request's own
}

// route is one API operation and the service operation it is, whose scope a token needs; "" for
// the open routes.
type route struct {
	pattern string
	op      service.Op
	handler http.HandlerFunc
}

// scope is the scope a token needs for the route ("" for an open one).
func (rt route) scope() string {
	if rt.op == "" {
		return scopeNone
	}
	return rt.op.Scope()
}

func (a *api) routeTable() []route {
	return []route{
		{"POST /v1/endpoints", service.OpCreateEndpoint, a.createEndpoint},
		{"GET /v1/endpoints", service.OpListEndpoints, listed(a, "endpoints", a.svc.Endpoints, viewOf)},
		{"GET /v1/endpoints/{id}", service.OpGetEndpoint, a.getEndpoint},
		{"PATCH /v1/endpoints/{id}", service.OpPatchEndpoint, a.patchEndpoint},
		{"DELETE /v1/endpoints/{id}", service.OpDeleteEndpoint, a.deleted(a.svc.DeleteEndpoint)},
		{"POST /v1/endpoints/{id}/secret/rotate", service.OpRotateSecret, a.rotateSecret},
		{"POST /v1/endpoints/{id}/test", service.OpTestSend, a.testSend},
		{"GET /v1/endpoints/{id}/deliveries", service.OpListDeliveries, a.listEndpointDeliveries},
		{"GET /v1/endpoints/{id}/dead-letters", service.OpListDeadLetters, a.listDeadLetters},
		{"POST /v1/endpoints/{id}/dead-letters/replay", service.OpReplayDeadLetters, a.replayDeadLetters},
		{"POST /v1/endpoints/{id}/redeliver", service.OpRedeliver, a.redeliver},
		{"DELETE /v1/endpoints/{id}/dead-letters", service.OpPurgeDeadLetters, a.deleted(a.svc.PurgeDeadLetters)},
		{"POST /v1/events", service.OpPublishEvents, a.ingest},
		{"GET /v1/events/{id}/deliveries", service.OpListDeliveries, a.listEventDeliveries},
		{"GET /v1/event-types", "", a.eventTypes},
		{"POST /v1/event-types", service.OpCreateEventType, a.createEventType},
		{"DELETE /v1/event-types/{name}", service.OpDeleteEventType, a.deleteEventType},
		{"POST /v1/tokens", service.OpCreateToken, a.createToken},
		{"GET /v1/tokens", service.OpListTokens, listed(a, "tokens", a.svc.Tokens, viewToken)},
		{"DELETE /v1/tokens/{id}", service.OpRevokeToken, a.deleted(a.svc.RevokeToken)},
		{"POST /v1/publishers", service.OpCreatePublisher, a.createPublisher},
		{"GET /v1/publishers", service.OpListPublishers, listed(a, "publishers", a.svc.Publishers, viewPublisher)},
		{"DELETE /v1/publishers/{id}", service.OpRevokePublisher, a.deleted(a.svc.RevokePublisher)},
		{"POST /v1/tenants", service.OpCreateTenant, a.createTenant},
		{"GET /v1/tenants", service.OpListTenants, listed(a, "tenants", a.svc.Tenants, viewTenant)},
		{"GET /v1/tenants/{id}", service.OpGetTenant, a.getTenant},
		{"DELETE /v1/tenants/{id}", service.OpDeleteTenant, a.deleted(a.svc.DeleteTenant)},
		{"POST /v1/tenants/{id}/portal-link", service.OpCreatePortalLink, a.portalLink},
		{"GET /v1/cluster", service.OpViewCluster, a.clusterView},
		{"GET /v1/openapi.json", "", serveOpenAPI},
		{"GET /healthz", "", func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		}},
		{"GET /readyz", "", a.ready},
		{"GET /metrics", "", promhttp.HandlerFor(a.metrics.reg, promhttp.HandlerOpts{}).ServeHTTP},
	}
}

func (a *api) routes() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range a.routeTable() {
		mux.HandleFunc(rt.pattern, a.require(rt.op, rt.handler))
	}
	if a.console != nil {
		mux.Handle("/ui/", a.console)
		mux.Handle("GET /ui", http.RedirectHandler("/ui/", http.StatusMovedPermanently))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "", fmt.Sprintf("no route %s %s", r.Method, r.URL.Path))
	})
	return a.logRequests(a.deadlines(http.MaxBytesHandler(mux, subjects.MaxEventBytes+1)))
}

// Deadlines of one API request, from the moment its headers are read (the server's
// ReadHeaderTimeout bounds those, its IdleTimeout the wait between requests).
const (
	defaultReadTimeout = 30 * time.Second // the body: a trickled one does not hold a connection
	writeTimeout       = 2 * time.Minute  // the answer, beyond the read timeout and a test send's POST
)

// deadlines bounds reading each request's body and writing its answer, per request through
// http.ResponseController rather than server-wide, so that a handler that streams (server-sent
// events) can lift its own write deadline: http.NewResponseController(w).SetWriteDeadline(time.Time{}).
func (a *api) deadlines(next http.Handler) http.Handler {
	read := a.readTimeout
	if read <= 0 {
		read = defaultReadTimeout
	}
	write := read + writeTimeout + a.postTimeout
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		now := time.Now()
		if err := rc.SetReadDeadline(now.Add(read)); err != nil {
			zerolog.Ctx(r.Context()).Warn().Err(err).Msg("api request: no read deadline")
		}
		if err := rc.SetWriteDeadline(now.Add(write)); err != nil {
			zerolog.Ctx(r.Context()).Warn().Err(err).Msg("api request: no write deadline")
		}
		next.ServeHTTP(w, r)
	})
}

// endpointView is an endpoint as the API shows it: never its secret.
type endpointView struct {
	ID          string            `json:"id"`
	URL         string            `json:"url"`
	EventTypes  []string          `json:"event_types"`
	Description string            `json:"description"`
	Enabled     bool              `json:"enabled"`
	Disabled    string            `json:"disabled_reason,omitempty"` // why quaycast disabled it (410 Gone)
	SecretError string            `json:"secret_error,omitempty"`    // its secret cannot be read: not delivered to
	Headers     map[string]string `json:"headers"`
	Signing     signingView       `json:"signing"`
	Layout      layoutView        `json:"layout"`
	Body        bodyView          `json:"body"`
	ReplyFormat string            `json:"reply_format,omitempty"`
	Condition   string            `json:"condition,omitempty"`
	Tenant      string            `json:"tenant,omitempty"`        // the tenant it belongs to; none: the operator's
	TenantEvts  bool              `json:"tenant_events,omitempty"` // an operator's endpoint that gets tenants' events too
	Rotations   []rotationView    `json:"previous_secrets"`        // still signing: when each stops, never the value
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
	Secret      string            `json:"secret,omitempty"` // only in the response that creates it
	// TargetError says why the URL would be refused if it were saved now (saved before a check
	// covered its form): deliveries to it are refused at connection time.
	TargetError string   `json:"target_error,omitempty"`
	Warnings    []string `json:"warnings,omitempty"` // only in the answer to a change: e.g. a host that does not resolve

	// Only when one endpoint is read:
	State       string         `json:"delivery_state,omitempty"` // delivering, degraded (being retried) or stopped, on this gateway
	Breaker     *BreakerStatus `json:"breaker,omitempty"`
	DeadLetters *uint64        `json:"dead_letters,omitempty"`
	// ConditionStats are what the condition passed over on this gateway; only with a condition.
	ConditionStats *consumer.ConditionStats `json:"condition_stats,omitempty"`

	Stuck *consumer.Stuck `json:"stuck,omitempty"` // entities blocked or parked on this gateway; only while there are some
	Owner *memberView     `json:"owner,omitempty"` // the gateway delivering to it, when clustered
}

type signingView struct {
	Profile    string `json:"profile"`
	HeaderName string `json:"header_name,omitempty"`
	HexCase    string `json:"hex_case,omitempty"`
}

// layoutView is an endpoint's layout with every default spelled out.
type layoutView struct {
	Preset          string `json:"preset"`
	EventHeader     string `json:"event_header"`
	EventName       string `json:"event_name"`
	DeliveryHeader  string `json:"delivery_header"`
	DeliveryID      string `json:"delivery_id"`
	TimestampHeader string `json:"timestamp_header"`
	TimestampFormat string `json:"timestamp_format"`
	QuaycastHeaders bool   `json:"quaycast_headers"`
}

func viewLayout(l consumer.Layout) layoutView {
	or := func(v, def string) string {
		if v == "" {
			return def
		}
		return v
	}
	return layoutView{
		Preset: or(l.Preset, consumer.LayoutStandard), EventHeader: l.EventHeader, EventName: or(l.EventName, consumer.EventNameType),
		DeliveryHeader: l.DeliveryHeader, DeliveryID: or(l.DeliveryID, consumer.DeliveryEventID),
		TimestampHeader: l.TimestampHeader, TimestampFormat: or(l.TimestampFormat, consumer.TimeUnix), QuaycastHeaders: !l.OmitQuaycast,
	}
}

// bodyView is how an endpoint's body differs from the event as published.
type bodyView struct {
	TypeField string   `json:"type_field"`
	Fields    []string `json:"fields"`
}

type rotationView struct {
	ValidUntil time.Time `json:"valid_until"`
}

func viewSigning(s consumer.Signing) signingView {
	v := signingView{Profile: s.Profile, HeaderName: s.HeaderName}
	if v.Profile == "" {
		v.Profile = string(signature.Standard)
	}
	if v.Profile == string(signature.Hex) {
		v.HexCase = "lower"
		if s.HexUpper {
			v.HexCase = "upper"
		}
	}
	if v.Profile == string(signature.Hub) && v.HeaderName == "" {
		v.HeaderName = signature.DefaultHubHeader
	}
	return v
}

// viewOf is an endpoint as the service returns it, as the API shows it.
func viewOf(e service.Endpoint) endpointView {
	v := view(e.Endpoint)
	v.TargetError, v.Secret, v.Warnings = e.TargetError, e.Secret, e.Warnings
	return v
}

func view(e *consumer.Endpoint) endpointView {
	h := make(map[string]string, len(e.Headers))
	for k, v := range e.Headers {
		h[k] = shownValue(k, v, true)
	}
	v := endpointView{
		ID: e.ID, URL: e.URL, EventTypes: e.EventTypes, Description: e.Description, Enabled: e.Enabled,
		Disabled: e.DisabledReason, SecretError: secretError(e), Headers: h, Signing: viewSigning(e.Signing), Layout: viewLayout(e.Layout), Body: bodyView{TypeField: e.Body.TypeField, Fields: append([]string{}, e.Body.Fields...)}, ReplyFormat: e.ReplyFormat, Condition: e.Condition, Rotations: []rotationView{},
		Tenant: e.Tenant, TenantEvts: e.TenantEvents,
		CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt,
	}
	for _, p := range e.PreviousSecrets {
		if time.Now().Before(p.Until) {
			v.Rotations = append(v.Rotations, rotationView{ValidUntil: p.Until})
		}
	}
	return v
}

func secretError(e *consumer.Endpoint) string {
	if e.SecretErr == nil {
		return ""
	}
	return e.SecretErr.Error() + ": start the gateway with the --secret-key that sealed it"
}

func (a *api) createEndpoint(w http.ResponseWriter, r *http.Request) {
	var in service.EndpointInput
	if !decodeJSON(w, r, &in) {
		return
	}
	created, err := a.svc.CreateEndpoint(r.Context(), callerOf(r), in)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/endpoints/"+created.ID)
	writeJSON(w, http.StatusCreated, viewOf(*created))
}

func (a *api) getEndpoint(w http.ResponseWriter, r *http.Request) {
	d, err := a.svc.Endpoint(r.Context(), callerOf(r), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	v := viewOf(d.Endpoint)
	v.State, v.Breaker, v.DeadLetters = d.State, &d.Breaker, &d.DeadLetters
	if d.Condition != "" {
		v.ConditionStats = &d.Conditions
	}
	if !d.Stuck.IsZero() {
		v.Stuck = &d.Stuck
	}
	if d.Owner != nil {
		v.Owner = &memberView{ID: d.Owner.ID, Name: d.Owner.Name, API: d.Owner.API}
	}
	writeJSON(w, http.StatusOK, v)
}

func (a *api) patchEndpoint(w http.ResponseWriter, r *http.Request) {
	if ep, ok := callWithBody(a, w, r, bodyRequired, a.svc.PatchEndpoint); ok {
		writeJSON(w, http.StatusOK, viewOf(*ep))
	}
}

// rotateSecret gives an endpoint a new secret — generated, or {"secret": ...} — and keeps the old
// one signing beside it for {"grace": "24h"} (the default; "0s" stops it at once).
func (a *api) rotateSecret(w http.ResponseWriter, r *http.Request) {
	if ep, ok := callWithBody(a, w, r, bodyOptional, a.svc.RotateSecret); ok {
		writeJSON(w, http.StatusOK, viewOf(*ep))
	}
}

type deadLetterView struct {
	consumer.DeadLetter
	Event json.RawMessage `json:"event"`
}

// listDeadLetters pages through an endpoint's dead letters, oldest first: ?limit= (1-1000,
// default 100) and ?after= (the next_cursor of the previous page).
func (a *api) listDeadLetters(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	page, err := a.svc.DeadLetters(r.Context(), callerOf(r), r.PathValue("id"), service.Page{Limit: q.Get("limit"), After: q.Get("after")})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]deadLetterView, len(page.DeadLetters))
	for i, dl := range page.DeadLetters {
		out[i] = deadLetterView{DeadLetter: dl, Event: dl.Body}
		if !json.Valid(dl.Body) {
			out[i].Event, _ = json.Marshal(string(dl.Body))
		}
	}
	writePage(w, "dead_letters", out, page.NextCursor)
}

// replayDeadLetters re-delivers an endpoint's dead letters in their original order: all, or
// {"event_ids": [...]}.
func (a *api) replayDeadLetters(w http.ResponseWriter, r *http.Request) {
	if n, ok := callWithBody(a, w, r, bodyOptional, a.svc.ReplayDeadLetters); ok {
		writeJSON(w, http.StatusAccepted, map[string]any{"replayed": n})
	}
}

// redeliver sends an endpoint's events again from {"since_seq": n} or {"since": time}.
func (a *api) redeliver(w http.ResponseWriter, r *http.Request) {
	if done, ok := callWithBody(a, w, r, bodyRequired, a.svc.Redeliver); ok {
		writeJSON(w, http.StatusAccepted, done)
	}
}

// ingest takes one event or a JSON array of events and answers once JetStream stored them.
func (a *api) ingest(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, subjects.MaxEventBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			writeError(w, http.StatusRequestEntityTooLarge, "body", fmt.Sprintf("larger than %d bytes", subjects.MaxEventBytes))
		case timedOut(err):
			writeError(w, http.StatusRequestTimeout, "body", "not received in time")
		default:
			writeError(w, http.StatusBadRequest, "body", "could not read the request body")
		}
		return
	}
	trimmed := bytes.TrimSpace(body)
	batch := len(trimmed) > 0 && trimmed[0] == '['
	var raws [][]byte
	if batch {
		var items []json.RawMessage
		if err := json.Unmarshal(trimmed, &items); err != nil {
			writeError(w, http.StatusBadRequest, "body", "not a JSON array of events")
			return
		}
		if len(items) == 0 || len(items) > 1000 {
			writeError(w, http.StatusBadRequest, "body", "a batch holds 1 to 1000 events")
			return
		}
		for _, it := range items {
			raws = append(raws, it)
		}
	} else {
		raws = [][]byte{body}
	}
	// The caller's W3C trace context goes on the messages; one that does not parse is ignored.
	ctx := traceContext.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	published, err := PublishEvents(ctx, a.js, a.types, raws)
	if err != nil && batch && published != nil {
		// Stored as far as it went, in order: the answer says which events to publish again.
		status, reason := http.StatusInternalServerError, "internal error"
		switch {
		case errors.Is(err, ErrStreamFull):
			w.Header().Set("Retry-After", "60")
			status, reason = http.StatusServiceUnavailable, "the events stream is full: publish the events not stored again later"
		case errors.Is(err, r.Context().Err()):
			status, reason = http.StatusServiceUnavailable, "request cancelled"
		default:
			zerolog.Ctx(r.Context()).Error().Err(err).Msg("ingest")
		}
		for _, p := range published {
			switch {
			case p.Stored && p.Duplicate:
				a.metrics.ingested.WithLabelValues("duplicate").Inc()
			case p.Stored:
				a.metrics.ingested.WithLabelValues("stored").Inc()
			}
		}
		writeJSON(w, status, map[string]any{"error": reason, "events": published})
		return
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	status := http.StatusOK // every event was a duplicate: already stored
	for _, p := range published {
		result := "duplicate"
		if !p.Duplicate {
			status, result = http.StatusAccepted, "stored"
		}
		a.metrics.ingested.WithLabelValues(result).Inc()
	}
	if batch {
		writeJSON(w, status, map[string]any{"events": published})
		return
	}
	writeJSON(w, status, published[0])
}

// eventTypeView is an event type of the catalogue, built in or custom (system "custom").
type eventTypeView struct {
	Name        string `json:"name"`
	Title       string `json:"title"`
	Group       string `json:"group"`
	System      string `json:"system"`
	Description string `json:"description"`
}

func viewEventType(t subjects.EventType) eventTypeView {
	return eventTypeView{t.Name, t.Title, t.Group, t.System, t.Description}
}

func (a *api) eventTypes(w http.ResponseWriter, _ *http.Request) {
	cat := a.svc.Catalogue()
	var out []eventTypeView
	for _, t := range cat.Types() {
		out = append(out, viewEventType(t))
	}
	writeJSON(w, http.StatusOK, map[string]any{"event_types": out, "groups": cat.Groups()})
}

// createEventType adds a custom event type (admin).
func (a *api) createEventType(w http.ResponseWriter, r *http.Request) {
	var in service.EventTypeInput
	if !decodeJSON(w, r, &in) {
		return
	}
	t, err := a.svc.CreateEventType(r.Context(), callerOf(r), in)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/event-types/"+t.Name)
	writeJSON(w, http.StatusCreated, viewEventType(t))
}

// deleteEventType removes a custom event type no endpoint selects (admin).
func (a *api) deleteEventType(w http.ResponseWriter, r *http.Request) {
	if err := a.svc.DeleteEventType(r.Context(), callerOf(r), r.PathValue("name")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *api) ready(w http.ResponseWriter, _ *http.Request) {
	switch {
	case !a.nc.IsConnected():
		writeError(w, http.StatusServiceUnavailable, "", "not connected to NATS")
	case !a.manager.Ready():
		writeError(w, http.StatusServiceUnavailable, "", "endpoint consumers starting")
	case a.cluster != nil && !a.cluster.Held():
		writeError(w, http.StatusServiceUnavailable, "", "not a member of the cluster: joining (or lease lost, joining again)")
	default:
		// Endpoints whose consumer could not be set up are retried; the gateway serves meanwhile.
		writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "endpoints": a.manager.Workers(), "degraded": a.manager.Degraded()})
	}
}

// fail answers an error from the service or a lower layer, the one place that maps errors to
// statuses: validation 400, forbidden 403, unknown id 404, conflict 409, a full stream 503,
// anything else 500 (logged, since an operator must look).
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	var (
		fe *fielderr.Error
		nf *service.NotFoundError
		fb *service.ForbiddenError
		cf *service.ConflictError
	)
	switch {
	case errors.As(err, &fe) && !fe.Flag: // a flag's error is this gateway's setup, not the request
		writeError(w, http.StatusBadRequest, fe.Field, fe.Reason)
	case errors.As(err, &fb):
		writeError(w, http.StatusForbidden, "", fb.Error())
	case errors.As(err, &nf):
		writeError(w, http.StatusNotFound, "id", nf.Error())
	case errors.As(err, &cf):
		writeError(w, http.StatusConflict, "", cf.Reason)
	case errors.Is(err, consumer.ErrSealed):
		zerolog.Ctx(r.Context()).Error().Err(err).Msg("api request")
		writeError(w, http.StatusInternalServerError, "", "endpoint secrets are encrypted: start the gateway with its --secret-key")
	case errors.Is(err, ErrStreamFull):
		w.Header().Set("Retry-After", "60")
		writeError(w, http.StatusServiceUnavailable, "", "the events stream is full: retry later")
	case errors.Is(err, r.Context().Err()):
		writeError(w, http.StatusServiceUnavailable, "", "request cancelled")
	default:
		zerolog.Ctx(r.Context()).Error().Err(err).Str("method", r.Method).Str("path", portal.RedactPath(r.URL.Path)).Msg("api request")
		writeError(w, http.StatusInternalServerError, "", "internal error")
	}
}

// logRequests gives every API request an id (the caller's X-Request-Id if it is sane), echoes
// it in the answer, puts a logger carrying it in the request's context, and logs the request at
// debug level, without bodies.
func (a *api) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if id == "" || len(id) > 64 || strings.ContainsFunc(id, func(c rune) bool { return c <= ' ' || c > '~' }) {
			id = "req_" + nuid.Next()
		}
		w.Header().Set("X-Request-Id", id)
		log := a.log.With().Str("request_id", id).Logger()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r.WithContext(log.WithContext(r.Context())))
		log.Debug().Str("method", r.Method).Str("path", portal.RedactPath(r.URL.Path)).Int("status", rec.status).
			Dur("duration_ms", time.Since(start)).Msg("api")
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection (deadlines, flushing).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
