package gateway

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nuid"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/subjects"
)

// listEndpointDeliveries is the delivery log of one endpoint.
func (a *api) listEndpointDeliveries(w http.ResponseWriter, r *http.Request) {
	ep, ok := a.endpointFromPath(w, r)
	if !ok {
		return
	}
	a.listDeliveries(w, r, consumer.AttemptQuery{EndpointID: ep.ID})
}

// listEventDeliveries is the delivery log of one event, across endpoints.
func (a *api) listEventDeliveries(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !validEventID(id) {
		writeError(w, http.StatusBadRequest, "id", "is not an event id")
		return
	}
	a.listDeliveries(w, r, consumer.AttemptQuery{EventID: id})
}

// listDeliveries pages through the delivery log, oldest first. Filters: status (delivered,
// failed, or an HTTP status code), since and until (RFC 3339), limit (1-1000, default 100), and
// after (the next_cursor of the previous page).
func (a *api) listDeliveries(w http.ResponseWriter, r *http.Request, q consumer.AttemptQuery) {
	v := r.URL.Query()
	q.Limit = 100
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, "limit", "must be a number from 1 to 1000")
			return
		}
		q.Limit = n
	}
	if s := v.Get("after"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, "after", "must be a cursor from a previous page")
			return
		}
		q.After = n
	}
	for _, tf := range []struct {
		name string
		into *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		if s := v.Get(tf.name); s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				writeError(w, http.StatusBadRequest, tf.name, "must be an RFC 3339 time")
				return
			}
			*tf.into = t
		}
	}
	if s := v.Get("status"); s != "" {
		match, ok := statusFilter(s)
		if !ok {
			writeError(w, http.StatusBadRequest, "status", "must be delivered, failed or an HTTP status code")
			return
		}
		q.Match = match
	}
	recs, next, err := a.attempts.List(r.Context(), q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]json.RawMessage, len(recs))
	for i, rec := range recs {
		out[i] = rec.Data
	}
	resp := map[string]any{"deliveries": out}
	if next != 0 {
		resp["next_cursor"] = strconv.FormatUint(next, 10)
	}
	writeJSON(w, http.StatusOK, resp)
}

// statusFilter matches log records by outcome or HTTP status.
func statusFilter(s string) (func([]byte) bool, bool) {
	decode := func(b []byte) (outcome string, status int) {
		var rec struct {
			Outcome  string
			Response *struct{ Status int }
		}
		_ = json.Unmarshal(b, &rec)
		if rec.Response != nil {
			status = rec.Response.Status
		}
		return rec.Outcome, status
	}
	switch s {
	case "delivered":
		return func(b []byte) bool { o, _ := decode(b); return o == "delivered" }, true
	case "failed":
		return func(b []byte) bool { o, _ := decode(b); return o != "delivered" }, true
	}
	code, err := strconv.Atoi(s)
	if err != nil || code < 100 || code > 599 {
		return nil, false
	}
	return func(b []byte) bool { _, st := decode(b); return st == code }, true
}

// testSend delivers a test event to an endpoint now, through the normal signing path, and answers
// with the attempt: status, latency, response excerpt. {"type": ...} picks the event type
// (default: the first the endpoint subscribes to), {"data": {...}} its data.
func (a *api) testSend(w http.ResponseWriter, r *http.Request) {
	ep, ok := a.endpointFromPath(w, r)
	if !ok {
		return
	}
	var in struct {
		Type   string          `json:"type"`
		Entity string          `json:"entity"`
		Data   json.RawMessage `json:"data"`
	}
	if r.ContentLength != 0 && !decodeJSON(w, r, &in) {
		return
	}
	if in.Type == "" {
		types, _ := subjects.Expand(ep.EventTypes)
		if len(types) > 0 {
			in.Type = types[0]
		}
	}
	if in.Entity == "" {
		in.Entity = "TEST0000001"
	}
	if len(in.Data) == 0 {
		in.Data = json.RawMessage(`{"test":true}`)
	}
	env := subjects.Envelope{ID: "test_" + nuid.Next(), Type: in.Type, Source: "quaycast", Entity: in.Entity, OccurredAt: time.Now().UTC(), Data: in.Data}
	if err := env.Validate(); err != nil {
		a.fail(w, r, err)
		return
	}
	if !subjects.Matches(ep.EventTypes, in.Type) { // a test the receiver would never see for real
		a.fail(w, r, &subjects.FieldError{Field: "type", Reason: "the endpoint does not subscribe to " + in.Type})
		return
	}
	body, err := json.Marshal(env)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	attempt, err := a.sender.Test(r.Context(), &consumer.Delivery{Endpoint: ep, Subject: env.Subject(), Event: env, Body: body, Published: env.OccurredAt, Attempt: 1})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, attempt)
}

// validEventID is checked before an event id from a path is used.
func validEventID(id string) bool {
	return id != "" && len(id) <= subjects.MaxIDBytes && !strings.ContainsAny(id, " \t\r\n")
}
