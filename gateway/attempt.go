package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
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

	header http.Header // as sent; flattened into Request.Headers for a test send, else by appendJSON
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
	DisplayFields DisplayFields   `json:"displayFields,omitempty"`
	Link          string          `json:"link,omitempty"`
}

// DisplayField is a label and value shown on an alert's card.
type DisplayField struct {
	Label string `json:"label"`
	Value string `json:"value"`
}

// DisplayFields are an alert's labels and values. Receivers send an array of {label, value}, or —
// as the voyage platform's documentation types the field — one {label, value} object; both read
// into the array the delivery log shows.
type DisplayFields []DisplayField

var errDisplayFields = errors.New("must be an array of {label, value} or one {label, value} object, with string label and value")

func (d *DisplayFields) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*d = nil
		return nil
	case bytes.HasPrefix(b, []byte("{")):
		var f DisplayField
		if err := decodeStrict(b, &f); err != nil {
			return errDisplayFields
		}
		*d = DisplayFields{f}
		return nil
	case bytes.HasPrefix(b, []byte("[")):
		var fs []DisplayField
		if err := decodeStrict(b, &fs); err != nil {
			return errDisplayFields
		}
		*d = fs
		return nil
	}
	return errDisplayFields
}

// decodeStrict decodes one JSON value into v, refusing fields v does not have.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// parseAlerts validates a reply in the alerts format and returns its alerts, normalised (display
// fields as an array). Errors name the alert by its index: alerts[12].
func parseAlerts(body []byte) ([]Alert, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(body, &items); err != nil {
		return nil, errors.New("not a JSON array of alerts {message, level, id, mutation, displayFields, link}: " + err.Error())
	}
	alerts := make([]Alert, len(items))
	for i, it := range items {
		at := "alerts[" + strconv.Itoa(i) + "]"
		a := &alerts[i]
		if err := decodeStrict(it, a); err != nil {
			if errors.Is(err, errDisplayFields) {
				return nil, fmt.Errorf("%s.displayFields: %w", at, err)
			}
			return nil, fmt.Errorf("%s: not an alert {message, level, id, mutation, displayFields, link}: %w", at, err)
		}
		if strings.TrimSpace(a.Message) == "" {
			return nil, errors.New(at + ": message is required")
		}
		switch m := bytes.TrimSpace(a.Mutation); {
		case bytes.Equal(m, []byte("null")):
			a.Mutation = nil
		case len(m) > 0 && m[0] != '{':
			return nil, errors.New(at + ": mutation must be an object")
		}
	}
	return alerts, nil
}
