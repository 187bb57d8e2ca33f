package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// Attempt is one delivery-log record: one POST, what was sent and what came back. Secrets are
// never in it: signatures are shown, custom headers that look like credentials are redacted.
type Attempt struct {
	ID         string           `json:"id"`
	EndpointID string           `json:"endpoint_id"`
	EventID    string           `json:"event_id"`
	EventSeq   uint64           `json:"event_seq,omitempty"`
	Type       string           `json:"type"`
	Entity     string           `json:"entity"`
	Attempt    int              `json:"attempt"`
	Test       bool             `json:"test,omitempty"` // a test send, outside the event stream
	At         time.Time        `json:"at"`
	DurationMS float64          `json:"duration_ms"`
	Outcome    string           `json:"outcome"` // delivered, retry, permanent, gone
	Error      string           `json:"error,omitempty"`
	Request    AttemptRequest   `json:"request"`
	Response   *AttemptResponse `json:"response,omitempty"`
	Alerts     []Alert          `json:"alerts,omitempty"`      // a reply in the alerts format, parsed
	ReplyError string           `json:"reply_error,omitempty"` // why a 2xx reply was not passed on

	header http.Header // as sent; flattened into Request.Headers when recorded
	custom http.Header // the endpoint's custom headers among them
}

// AttemptRequest is what was sent, but the body: that is the event, in the events stream.
type AttemptRequest struct {
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
}

// AttemptResponse is what came back.
type AttemptResponse struct {
	Status    int               `json:"status"`
	Headers   map[string]string `json:"headers"`
	Body      string            `json:"body"` // the first 4 KiB
	Truncated bool              `json:"truncated,omitempty"`
}

const logBodyBytes = 4 << 10

// flatHeaders is a reply's headers, one value each.
func flatHeaders(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for k, vs := range h {
		out[k] = strings.Join(vs, ", ")
	}
	return out
}

// flatRequestHeaders is a request's headers, one value each, shown by the one rule (shownValue):
// custom holds the endpoint's custom headers that were sent.
func flatRequestHeaders(h, custom http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for k, vs := range h {
		_, isCustom := custom[k]
		out[k] = shownValue(k, strings.Join(vs, ", "), isCustom)
	}
	return out
}

func excerpt(body []byte) (string, bool) {
	if len(body) <= logBodyBytes {
		return strings.ToValidUTF8(string(body), "\uFFFD"), false
	}
	cut := body[:logBodyBytes]
	for len(cut) > 0 && !utf8.Valid(cut) { // do not split a character
		cut = cut[:len(cut)-1]
	}
	return string(cut), true
}

// Alert is one item of a reply in the voyage platform's format: an array of alerts shown to the
// user, with optional suggested changes (mutation).
type Alert struct {
	Message       string          `json:"message"`
	Level         string          `json:"level,omitempty"`
	ID            string          `json:"id,omitempty"`
	Mutation      json.RawMessage `json:"mutation,omitempty"`
	DisplayFields []DisplayField  `json:"displayFields,omitempty"`
	Link          string          `json:"link,omitempty"`
}

// DisplayField is a label and value shown on an alert's card.
type DisplayField struct {
	Label string `json:"label"`
	Value string `json:"value"`
}

// parseAlerts validates a reply in the alerts format.
func parseAlerts(body []byte) ([]Alert, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var alerts []Alert
	if err := dec.Decode(&alerts); err != nil {
		return nil, errors.New("not a JSON array of alerts {message, level, id, mutation, displayFields, link}: " + err.Error())
	}
	for i, a := range alerts {
		if strings.TrimSpace(a.Message) == "" {
			return nil, errors.New("alert " + itoa(i) + ": message is required")
		}
		if len(a.Mutation) > 0 && !bytes.HasPrefix(bytes.TrimSpace(a.Mutation), []byte("{")) {
			return nil, errors.New("alert " + itoa(i) + ": mutation must be an object")
		}
	}
	return alerts, nil
}

func itoa(i int) string { return string(rune('0' + i%10)) }
