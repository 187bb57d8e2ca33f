package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/quaycast/quaycast/gateway"
	"github.com/quaycast/quaycast/internal/fielderr"
	"github.com/quaycast/quaycast/subjects"
)

type apiFlags struct {
	API   string `name:"api" env:"QUAYCAST_API" default:"http://${listen}" help:"Base URL of the gateway's API."`
	Token string `name:"token" env:"QUAYCAST_TOKEN" help:"API token (or the admin token). Prefer the environment variable."`
	CA    string `name:"api-ca" env:"QUAYCAST_API_CA" help:"PEM CA certificate(s) to verify an https API with (one served with --tls-cert by a private CA)." placeholder:"FILE"`
}

// print calls the API and prints its JSON answer.
func (f apiFlags) print(ctx context.Context, method, path string, body any) error {
	var out json.RawMessage
	if err := f.client().Do(ctx, method, path, body, &out); err != nil {
		return err
	}
	_, err := os.Stdout.Write(out)
	return err
}

func (f apiFlags) client() *gateway.Client {
	c := gateway.NewClient(f.API)
	c.Token = f.Token
	if f.CA != "" {
		c.HTTP.Transport = trusting(f.CA)
	}
	return c
}

// trusting is a transport that verifies servers against the CA certificates in file; one that
// cannot be read makes every request fail, saying so.
func trusting(file string) http.RoundTripper {
	pool := x509.NewCertPool()
	b, err := os.ReadFile(file)
	if err == nil && !pool.AppendCertsFromPEM(b) {
		err = fmt.Errorf("no PEM certificate in %s", file)
	}
	if err != nil {
		return failing{fmt.Errorf("--api-ca: %w", err)}
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return t
}

type failing struct{ err error }

func (f failing) RoundTrip(*http.Request) (*http.Response, error) { return nil, f.err }

type tokensCmd struct {
	Create tokensCreateCmd `cmd:"" help:"Create an API token; prints it once. Needs the admin token."`
	List   tokensListCmd   `cmd:"" help:"List API tokens (never their secrets)."`
	Revoke tokensRevokeCmd `cmd:"" help:"Revoke an API token."`
}

type tokensCreateCmd struct {
	apiFlags
	Name   string   `name:"name" required:"" help:"Who or what holds it, e.g. tos-rotterdam."`
	Scopes []string `name:"scopes" required:"" help:"Comma-separated: endpoints:read, endpoints:write, endpoints:delete, events:publish, deliveries:read."`
	Tenant string   `name:"tenant" help:"Limit the token to this tenant's endpoints, deliveries and dead letters."`
}

func (c *tokensCreateCmd) Run(ctx context.Context) error {
	body := map[string]any{"name": c.Name, "scopes": c.Scopes}
	set(body, "tenant", c.Tenant)
	return c.print(ctx, "POST", "/v1/tokens", body)
}

type tenantsCmd struct {
	Create tenantsCreateCmd `cmd:"" help:"Create a tenant. Needs the admin token."`
	List   tenantsListCmd   `cmd:"" help:"List the tenants."`
	Get    tenantsGetCmd    `cmd:"" help:"Show one tenant."`
	Rm     tenantsRmCmd     `cmd:"" help:"Delete a tenant that has no endpoints left. Needs the admin token."`
	// portal-link, as the API's path says it.
	PortalLink tenantsPortalLinkCmd `cmd:"" name:"portal-link" help:"Make a single-use link that opens the console limited to the tenant (prints url and expires_at). Needs endpoints:read, write and delete and deliveries:read, as the operator."`
}

type tenantsPortalLinkCmd struct {
	apiFlags
	ID         string `arg:"" help:"Tenant id."`
	TTL        string `name:"ttl" help:"How long the link can be opened (default 5m, at most 1h)."`
	SessionTTL string `name:"session-ttl" help:"How long the session it opens lasts (default and at most the gateway's --portal-session-ttl)."`
}

func (c *tenantsPortalLinkCmd) Run(ctx context.Context) error {
	body := map[string]any{}
	set(body, "ttl", c.TTL)
	set(body, "session_ttl", c.SessionTTL)
	return c.print(ctx, "POST", "/v1/tenants/"+url.PathEscape(c.ID)+"/portal-link", body)
}

type tenantsCreateCmd struct {
	apiFlags
	ID         string `name:"id" required:"" help:"What events name in their tenants field: 1 to 64 characters of [a-z0-9_-], e.g. maersk."`
	Name       string `name:"name" required:"" help:"Its name for people, e.g. \"Maersk Line\"."`
	ExternalID string `name:"external-id" help:"Your own reference for it (CRM, billing)."`
}

func (c *tenantsCreateCmd) Run(ctx context.Context) error {
	return c.print(ctx, "POST", "/v1/tenants", map[string]any{"id": c.ID, "name": c.Name, "external_id": c.ExternalID})
}

type tenantsListCmd struct{ apiFlags }

func (c *tenantsListCmd) Run(ctx context.Context) error {
	return c.print(ctx, "GET", "/v1/tenants", nil)
}

type tenantsGetCmd struct {
	apiFlags
	ID string `arg:"" help:"Tenant id."`
}

func (c *tenantsGetCmd) Run(ctx context.Context) error {
	return c.print(ctx, "GET", "/v1/tenants/"+url.PathEscape(c.ID), nil)
}

type tenantsRmCmd struct {
	apiFlags
	ID string `arg:"" help:"Tenant id."`
}

func (c *tenantsRmCmd) Run(ctx context.Context) error {
	return c.remove(ctx, "/v1/tenants/"+url.PathEscape(c.ID), "deleted", c.ID)
}

type tokensListCmd struct{ apiFlags }

func (c *tokensListCmd) Run(ctx context.Context) error {
	return c.print(ctx, "GET", "/v1/tokens", nil)
}

type tokensRevokeCmd struct {
	apiFlags
	ID string `arg:"" help:"Token id (tok_...)."`
}

func (c *tokensRevokeCmd) Run(ctx context.Context) error {
	return c.remove(ctx, "/v1/tokens/"+url.PathEscape(c.ID), "revoked", c.ID)
}

// remove sends DELETE path and, once the API has done it, prints what was done to whom
// ("deleted ep_...").
func (f apiFlags) remove(ctx context.Context, path, done, whom string) error {
	if err := f.client().Do(ctx, "DELETE", path, nil, nil); err != nil {
		return err
	}
	fmt.Println(done, whom)
	return nil
}

type endpointsCmd struct {
	Add       endpointsAddCmd       `cmd:"" help:"Register an endpoint; prints it with its new secret (shown only now)."`
	Edit      endpointsEditCmd      `cmd:"" help:"Change an endpoint's settings: only the flags given."`
	List      endpointsListCmd      `cmd:"" help:"List endpoints."`
	Get       endpointsGetCmd       `cmd:"" help:"Show one endpoint."`
	Rm        endpointsRmCmd        `cmd:"" help:"Delete an endpoint."`
	Rotate    endpointsRotateCmd    `cmd:"" help:"Give an endpoint a new secret; the old one keeps signing for --grace."`
	Test      endpointsTestCmd      `cmd:"" help:"Send a test event to an endpoint now and show what came back; exits 1 unless it was delivered."`
	Redeliver endpointsRedeliverCmd `cmd:"" help:"Send an endpoint's events again from a stream sequence or a time on, marked as redeliveries, beside live traffic."`
}

type endpointsRedeliverCmd struct {
	apiFlags
	ID       string   `arg:"" help:"Endpoint id."`
	SinceSeq uint64   `name:"since-seq" placeholder:"SEQ" xor:"start" help:"From this events-stream sequence on (a delivery's or dead letter's event_seq)."`
	Since    string   `name:"since" placeholder:"TIME" xor:"start" help:"From the first event stored at or after this time (RFC 3339)."`
	Entity   []string `name:"entity" help:"Only these entities' events (repeatable, or comma-separated)."`
	Limit    int      `name:"limit" help:"Copy at most this many (default and most 100000); the answer's next_seq says where to go on."`
}

func (c *endpointsRedeliverCmd) Run(ctx context.Context) error {
	body := map[string]any{"entities": c.Entity}
	set(body, "since_seq", c.SinceSeq)
	set(body, "since", c.Since)
	set(body, "limit", c.Limit)
	return c.print(ctx, "POST", "/v1/endpoints/"+url.PathEscape(c.ID)+"/redeliver", body)
}

type endpointsTestCmd struct {
	apiFlags
	ID     string `arg:"" help:"Endpoint id."`
	Type   string `name:"type" help:"Event type (default: the first the endpoint subscribes to)."`
	Entity string `name:"entity" help:"Entity id of the test event."`
	Data   string `name:"data" help:"The test event's data, a JSON object."`
}

func (c *endpointsTestCmd) Run(ctx context.Context) error {
	body := map[string]any{}
	set(body, "type", c.Type)
	set(body, "entity", c.Entity)
	if c.Data != "" {
		body["data"] = json.RawMessage(c.Data)
	}
	var raw json.RawMessage
	if err := c.client().Do(ctx, "POST", "/v1/endpoints/"+url.PathEscape(c.ID)+"/test", body, &raw); err != nil {
		return err
	}
	if _, err := os.Stdout.Write(raw); err != nil {
		return err
	}
	return testSendResult(raw)
}

// testSendResult is nil for a delivered test send and an error saying what happened otherwise,
// so that `endpoints test` exits non-zero unless the receiver accepted the event.
func testSendResult(raw []byte) error {
	var att struct {
		Outcome  string `json:"outcome"`
		Error    string `json:"error"`
		Response *struct {
			Status int `json:"status"`
		} `json:"response"`
	}
	if err := json.Unmarshal(raw, &att); err != nil {
		return fmt.Errorf("decode the test send's answer: %w", err)
	}
	if att.Outcome == "delivered" {
		return nil
	}
	msg := "test send not delivered: outcome " + att.Outcome
	if att.Response != nil && att.Response.Status != 0 {
		msg += fmt.Sprintf(", status %d", att.Response.Status)
	}
	if att.Error != "" {
		msg += ": " + att.Error
	}
	return errors.New(msg)
}

type endpointsRotateCmd struct {
	apiFlags
	ID     string        `arg:"" help:"Endpoint id."`
	Grace  time.Duration `name:"grace" default:"24h" help:"How long the old secret keeps signing beside the new one (0s: stop at once)."`
	Secret string        `name:"secret" env:"QUAYCAST_ENDPOINT_SECRET" help:"Use this secret instead of a generated one."`
}

func (c *endpointsRotateCmd) Run(ctx context.Context) error {
	body := map[string]any{"grace": c.Grace.String()}
	set(body, "secret", c.Secret)
	return c.print(ctx, "POST", "/v1/endpoints/"+url.PathEscape(c.ID)+"/secret/rotate", body)
}

type deadLettersCmd struct {
	List   deadLettersListCmd   `cmd:"" help:"List an endpoint's dead letters, oldest first."`
	Replay deadLettersReplayCmd `cmd:"" help:"Deliver dead letters again, in their original order."`
	Purge  deadLettersPurgeCmd  `cmd:"" help:"Delete all of an endpoint's dead letters."`
}

type deadLettersListCmd struct {
	apiFlags
	ID    string `arg:"" help:"Endpoint id."`
	Limit int    `name:"limit" default:"100" help:"Page size (1-1000)."`
	After string `name:"after" help:"Cursor: the next_cursor of the previous page."`
}

func (c *deadLettersListCmd) Run(ctx context.Context) error {
	path := fmt.Sprintf("/v1/endpoints/%s/dead-letters?limit=%d", url.PathEscape(c.ID), c.Limit)
	if c.After != "" {
		path += "&after=" + url.QueryEscape(c.After)
	}
	return c.print(ctx, "GET", path, nil)
}

type deadLettersReplayCmd struct {
	apiFlags
	ID       string   `arg:"" help:"Endpoint id."`
	EventIDs []string `arg:"" optional:"" name:"event-ids" help:"Only these event ids (default: all)."`
	Entity   []string `name:"entity" help:"Only the dead letters of these entities (repeatable, or comma-separated)."`
	Since    string   `name:"since" placeholder:"TIME" help:"Only what was dead-lettered at or after this time (RFC 3339)."`
	Until    string   `name:"until" placeholder:"TIME" help:"Only what was dead-lettered before this time (RFC 3339)."`
}

func (c *deadLettersReplayCmd) Run(ctx context.Context) error {
	body := map[string]any{"event_ids": c.EventIDs, "entities": c.Entity}
	set(body, "since", c.Since)
	set(body, "until", c.Until)
	return c.print(ctx, "POST", "/v1/endpoints/"+url.PathEscape(c.ID)+"/dead-letters/replay", body)
}

type deadLettersPurgeCmd struct {
	apiFlags
	ID string `arg:"" help:"Endpoint id."`
}

func (c *deadLettersPurgeCmd) Run(ctx context.Context) error {
	return c.remove(ctx, "/v1/endpoints/"+url.PathEscape(c.ID)+"/dead-letters", "purged the dead letters of", c.ID)
}

// The endpoint commands have a flag for every field of the API's endpoint input (a test walks the
// OpenAPI document's EndpointInput and EndpointPatch to hold them to it).

type endpointsAddCmd struct {
	apiFlags
	URL         string   `name:"url" required:"" help:"Where to POST events (http or https)."`
	Types       []string `name:"types" required:"" help:"Event types to subscribe to: names, group:<group>, or * for all, each optionally for one source (<source>:cargo_loaded, <source>:group:gate, <source>:*); comma-separated."`
	Description string   `name:"description" help:"What this endpoint is for."`
	Header      []string `name:"header" sep:"none" placeholder:"NAME=VALUE" help:"Custom header sent with every delivery, NAME=VALUE; repeat the flag for more (the value is taken as is, commas and semicolons included)."`
	Profile     string   `name:"profile" default:"standard" enum:"standard,hub,hex" help:"Signing profile: standard (Standard Webhooks), hub (X-Hub-Signature-256: sha256=<hex>) or hex (bare hex in --signature-header)."`
	SigHeader   string   `name:"signature-header" help:"hub and hex: the header that carries the signature."`
	HexCase     string   `name:"hex-case" enum:"lower,upper," default:"" help:"hex: lower (default) or upper case."`
	ReplyFormat string   `name:"reply-format" placeholder:"FORMAT" help:"What a 2xx JSON reply is: empty (default: any JSON, passed on as it is) or alerts (the voyage platform's alerts, validated and parsed into the delivery log)."`
	Condition   string   `name:"condition" placeholder:"CEL" help:"Send only the events this CEL expression over the envelope takes, e.g. 'data.reefer.setpoint < -18 && entity.startsWith(\"MSCU\")'."`
	layoutFlags
	TypeField string   `name:"type-field" placeholder:"NAME" help:"Body: mirror the event type (as the layout names it) into this top-level field, e.g. event_type."`
	Field     []string `name:"field" sep:"none" placeholder:"POINTER" help:"Body: send only the value this JSON Pointer (RFC 6901) selects, under its last token (/data/gate -> gate); repeat for more."`
	Disabled  bool     `name:"disabled" help:"Register it paused."`
	Secret    string   `name:"secret" env:"QUAYCAST_ENDPOINT_SECRET" help:"Use this secret (whsec_...) instead of a generated one."`
	Tenant    string   `name:"tenant" help:"The tenant it belongs to: it gets that tenant's events only (a tenant's token gives its own)."`
	TenantEvt bool     `name:"tenant-events" help:"An endpoint of yours (no --tenant) that also gets events naming tenants."`
}

func (c *endpointsAddCmd) Run(ctx context.Context) error {
	body, err := c.body()
	if err != nil {
		return err
	}
	return c.print(ctx, "POST", "/v1/endpoints", body)
}

// body is the API's EndpointInput for the flags.
func (c *endpointsAddCmd) body() (map[string]any, error) {
	body := map[string]any{"url": c.URL, "event_types": c.Types, "enabled": !c.Disabled}
	set(body, "description", c.Description)
	if len(c.Header) > 0 {
		h, err := parseHeaders(c.Header)
		if err != nil {
			return nil, err
		}
		body["headers"] = h
	}
	set(body, "secret", c.Secret)
	set(body, "tenant", c.Tenant)
	if c.TenantEvt {
		body["tenant_events"] = true
	}
	set(body, "reply_format", c.ReplyFormat)
	set(body, "condition", c.Condition)
	if c.Profile != "standard" || c.SigHeader != "" || c.HexCase != "" {
		body["signing"] = map[string]string{"profile": c.Profile, "header_name": c.SigHeader, "hex_case": c.HexCase}
	}
	if l := c.layout(); l != nil {
		body["layout"] = l
	}
	if c.TypeField != "" || len(c.Field) > 0 {
		body["body"] = map[string]any{"type_field": c.TypeField, "fields": c.Field}
	}
	return body, nil
}

// layoutFlags are the API's layout object: a preset and the fields that change it.
type layoutFlags struct {
	Layout          string  `name:"layout" enum:"standard,github,octopi," default:"" help:"Header layout preset: standard (quaycast's headers), github (X-GitHub-Event, X-GitHub-Delivery, signing hub) or octopi (X-Octopi-Event/-Delivery/-Timestamp/-Signature, signing hex). Brings its signing unless a signing flag is given."`
	EventHeader     *string `name:"event-header" help:"Layout: the header that carries the event type (empty: none)."`
	EventName       string  `name:"event-name" enum:"type,title," default:"" help:"Layout: the event header carries the machine name (type) or the display name (title)."`
	DeliveryHeader  *string `name:"delivery-header" help:"Layout: the header that carries the delivery id (empty: none)."`
	DeliveryID      string  `name:"delivery-id" enum:"event_id,uuid," default:"" help:"Layout: the delivery id is the event id or a UUID of endpoint and event id (the same on every retry)."`
	TimestampHeader *string `name:"timestamp-header" help:"Layout: the header that carries the attempt's time (empty: none)."`
	TimestampFormat string  `name:"timestamp-format" enum:"unix,unix_ms,rfc3339," default:"" help:"Layout: the timestamp header in Unix seconds, milliseconds or RFC 3339."`
	QuaycastHeaders *bool   `name:"quaycast-headers" negatable:"" help:"Layout: send quaycast's own webhook-*/Quaycast-* headers as well (--no-quaycast-headers: not)."`
}

// layout is the API's layout object for the flags given; nil when none is.
func (f *layoutFlags) layout() map[string]any {
	l := map[string]any{}
	for k, v := range map[string]string{"preset": f.Layout, "event_name": f.EventName, "delivery_id": f.DeliveryID, "timestamp_format": f.TimestampFormat} {
		if v != "" {
			l[k] = v
		}
	}
	for k, v := range map[string]*string{"event_header": f.EventHeader, "delivery_header": f.DeliveryHeader, "timestamp_header": f.TimestampHeader} {
		if v != nil {
			l[k] = *v
		}
	}
	if f.QuaycastHeaders != nil {
		l["quaycast_headers"] = *f.QuaycastHeaders
	}
	if len(l) == 0 {
		return nil
	}
	return l
}

// parseHeaders turns repeated --header NAME=VALUE flags into the API's headers object: split at the
// first '=', the value kept as is.
func parseHeaders(flags []string) (map[string]string, error) {
	h := make(map[string]string, len(flags))
	for _, f := range flags {
		name, value, ok := strings.Cut(f, "=")
		if !ok || name == "" {
			return nil, fielderr.Flag("header", fmt.Sprintf("%q: want NAME=VALUE", f))
		}
		for have := range h {
			if strings.EqualFold(have, name) {
				return nil, fielderr.Flag("header", fmt.Sprintf("%s given twice", name))
			}
		}
		h[name] = value
	}
	return h, nil
}

// endpointsEditCmd changes what its flags name and nothing else (PATCH).
type endpointsEditCmd struct {
	apiFlags
	ID           string   `arg:"" help:"Endpoint id."`
	URL          *string  `name:"url" help:"Where to POST events (http or https)."`
	Types        []string `name:"types" help:"Event types to subscribe to, replacing the current ones: names, group:<group>, or *, each optionally for one source (<source>:...); comma-separated."`
	Description  *string  `name:"description" help:"What this endpoint is for."`
	Header       []string `name:"header" sep:"none" placeholder:"NAME=VALUE" help:"Custom header, NAME=VALUE, repeatable: the given headers replace all current custom headers."`
	ClearHeaders bool     `name:"clear-headers" xor:"headers" help:"Remove every custom header."`
	Profile      *string  `name:"profile" help:"Signing profile: standard, hub or hex. A signing flag replaces the whole signing setting (the others back to their defaults); the secret must suit the profile."`
	SigHeader    *string  `name:"signature-header" help:"hub and hex: the header that carries the signature."`
	HexCase      *string  `name:"hex-case" help:"hex: lower (default) or upper case."`
	ReplyFormat  *string  `name:"reply-format" placeholder:"FORMAT" help:"What a 2xx JSON reply is: empty (any JSON) or alerts."`
	Condition    *string  `name:"condition" placeholder:"CEL" help:"Send only the events this CEL expression takes; empty removes the condition."`
	layoutFlags
	TypeField *string  `name:"type-field" placeholder:"NAME" help:"Body: mirror the event type into this top-level field (empty: none). A body flag replaces the whole body setting."`
	Field     []string `name:"field" sep:"none" placeholder:"POINTER" help:"Body: send only the values these JSON Pointers select; repeat for more."`
	ClearBody bool     `name:"clear-body" help:"Body: send the event as published again."`
	TenantEvt *bool    `name:"tenant-events" negatable:"" help:"An endpoint of yours (no tenant): also get events naming tenants (--no-tenant-events: not)."`
	Enable    bool     `name:"enable" xor:"enabled" help:"Resume delivery (the target is checked again)."`
	Disable   bool     `name:"disable" xor:"enabled" help:"Pause delivery; the endpoint keeps its position."`
}

func (c *endpointsEditCmd) Run(ctx context.Context) error {
	body, err := c.body()
	if err != nil {
		return err
	}
	if len(body) == 0 {
		return errors.New("nothing to change: give at least one flag (quaycast endpoints edit --help)")
	}
	return c.print(ctx, "PATCH", "/v1/endpoints/"+url.PathEscape(c.ID), body)
}

// body is the API's EndpointPatch for the flags given.
func (c *endpointsEditCmd) body() (map[string]any, error) {
	body := map[string]any{}
	setPtr(body, "url", c.URL)
	setPtr(body, "tenant_events", c.TenantEvt)
	if c.Types != nil {
		body["event_types"] = c.Types
	}
	setPtr(body, "description", c.Description)
	switch {
	case c.ClearHeaders && len(c.Header) > 0:
		return nil, fielderr.Flag("clear-headers", "cannot be used with --header")
	case c.ClearHeaders:
		body["headers"] = map[string]string{}
	case len(c.Header) > 0:
		h, err := parseHeaders(c.Header)
		if err != nil {
			return nil, err
		}
		body["headers"] = h
	}
	if c.Profile != nil || c.SigHeader != nil || c.HexCase != nil {
		body["signing"] = map[string]string{"profile": deref(c.Profile), "header_name": deref(c.SigHeader), "hex_case": deref(c.HexCase)}
	}
	setPtr(body, "reply_format", c.ReplyFormat)
	setPtr(body, "condition", c.Condition)
	if l := c.layout(); l != nil { // replaces the whole layout: the fields not given take the preset's values
		body["layout"] = l
	}
	switch {
	case c.ClearBody && (c.TypeField != nil || len(c.Field) > 0):
		return nil, fielderr.Flag("clear-body", "cannot be used with --type-field or --field")
	case c.ClearBody:
		body["body"] = map[string]any{"type_field": "", "fields": []string{}}
	case c.TypeField != nil || len(c.Field) > 0:
		body["body"] = map[string]any{"type_field": deref(c.TypeField), "fields": c.Field}
	}
	if c.Enable || c.Disable {
		body["enabled"] = c.Enable
	}
	return body, nil
}

// set puts a flag's value in a request body unless it is its type's zero value: a flag not given
// leaves the field out, which the API reads as its default (or, in a PATCH, as no change).
func set[T comparable](body map[string]any, key string, v T) {
	var zero T
	if v != zero {
		body[key] = v
	}
}

// setPtr puts a flag's value in a request body when the flag was given at all (a PATCH may set a
// field to its zero value).
func setPtr[T any](body map[string]any, key string, v *T) {
	if v != nil {
		body[key] = *v
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

type endpointsListCmd struct {
	apiFlags
	JSON bool `name:"json" help:"Print the API's JSON."`
}

func (c *endpointsListCmd) Run(ctx context.Context) error {
	var raw json.RawMessage
	if err := c.client().Do(ctx, "GET", "/v1/endpoints", nil, &raw); err != nil {
		return err
	}
	if c.JSON {
		_, err := os.Stdout.Write(raw)
		return err
	}
	var list struct {
		Endpoints []struct {
			ID         string   `json:"id"`
			URL        string   `json:"url"`
			EventTypes []string `json:"event_types"`
			Enabled    bool     `json:"enabled"`
		} `json:"endpoints"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return fmt.Errorf("decode endpoints: %w", err)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tENABLED\tURL\tEVENT TYPES")
	for _, e := range list.Endpoints {
		fmt.Fprintf(tw, "%s\t%t\t%s\t%s\n", e.ID, e.Enabled, e.URL, strings.Join(e.EventTypes, ","))
	}
	return tw.Flush()
}

type endpointsGetCmd struct {
	apiFlags
	ID string `arg:"" help:"Endpoint id."`
}

func (c *endpointsGetCmd) Run(ctx context.Context) error {
	return c.print(ctx, "GET", "/v1/endpoints/"+c.ID, nil)
}

type endpointsRmCmd struct {
	apiFlags
	ID string `arg:"" help:"Endpoint id."`
}

func (c *endpointsRmCmd) Run(ctx context.Context) error {
	return c.remove(ctx, "/v1/endpoints/"+c.ID, "deleted", c.ID)
}

type eventsCmd struct {
	Types      eventsTypesCmd      `cmd:"" help:"Print the event catalogue: machine names, human names, groups (custom types included)."`
	AddType    eventsAddTypeCmd    `cmd:"" name:"add-type" help:"Add a custom event type (admin): every gateway sees it."`
	DeleteType eventsDeleteTypeCmd `cmd:"" name:"delete-type" help:"Delete a custom event type no endpoint selects (admin)."`
}

type eventsTypesCmd struct {
	apiFlags
}

// Run prints the gateway's catalogue, or the built-in one when no gateway answers.
func (c *eventsTypesCmd) Run(ctx context.Context) error {
	var cat struct {
		EventTypes []subjects.EventType `json:"event_types"`
	}
	if err := c.client().Do(ctx, "GET", "/v1/event-types", nil, &cat); err != nil {
		fmt.Fprintf(os.Stderr, "quaycast: %v; the built-in types only:\n", err)
		cat.EventTypes = subjects.Builtin().Types()
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TYPE\tNAME\tGROUP\tSYSTEM")
	for _, t := range cat.EventTypes {
		fmt.Fprintf(tw, "%s\t%s\tgroup:%s\t%s\n", t.Name, t.Title, t.Group, t.System)
	}
	return tw.Flush()
}

type eventsAddTypeCmd struct {
	apiFlags
	Name        string `name:"name" required:"" help:"Machine name, the <type> of evt.<source>.<type>: 1-64 of [a-z0-9_-]."`
	Title       string `name:"title" required:"" help:"Display name, e.g. 'Reefer Alarm'."`
	Group       string `name:"group" required:"" help:"Group, existing or new (group:<group> selectors cover it)."`
	Description string `name:"description" help:"What triggers it."`
}

func (c *eventsAddTypeCmd) Run(ctx context.Context) error {
	return c.print(ctx, "POST", "/v1/event-types", map[string]string{"name": c.Name, "title": c.Title, "group": c.Group, "description": c.Description})
}

type eventsDeleteTypeCmd struct {
	apiFlags
	Name string `arg:"" help:"The custom type's machine name."`
}

func (c *eventsDeleteTypeCmd) Run(ctx context.Context) error {
	return c.remove(ctx, "/v1/event-types/"+url.PathEscape(c.Name), "deleted", c.Name)
}

type publishCmd struct {
	natsFlags
	File       string `name:"file" short:"f" help:"Publish this envelope file as is (- for stdin); the other event flags are ignored."`
	Type       string `name:"type" help:"Event type, e.g. cargo_gated_in."`
	Source     string `name:"source" default:"tos" help:"Publishing system."`
	Entity     string `name:"entity" help:"Container, shipment or voyage id."`
	ID         string `name:"id" help:"Event id (default: generated)."`
	Data       string `name:"data" default:"{}" help:"The event's data, a JSON object."`
	OccurredAt string `name:"occurred-at" help:"RFC 3339 time the event happened (default: now)."`
}

func (c *publishCmd) Run(ctx context.Context) error {
	raw, err := c.body()
	if err != nil {
		return err
	}
	nc, err := c.connect("quaycast publish")
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := gateway.PublishEvents(pctx, js, nil, [][]byte{raw})
	if err != nil {
		return err
	}
	out, _ := json.Marshal(res[0])
	fmt.Println(string(out))
	return nil
}

// body is the envelope to publish: the file as is, or one built from the flags.
func (c *publishCmd) body() ([]byte, error) {
	switch c.File {
	case "-":
		return io.ReadAll(io.LimitReader(os.Stdin, subjects.MaxEventBytes+1))
	case "":
	default:
		return os.ReadFile(c.File)
	}
	env := subjects.Envelope{ID: c.ID, Type: c.Type, Source: c.Source, Entity: c.Entity, Data: json.RawMessage(c.Data), OccurredAt: time.Now().UTC()}
	if env.ID == "" {
		env.ID = "evt_" + nuid.Next()
	}
	if c.OccurredAt != "" {
		t, err := time.Parse(time.RFC3339Nano, c.OccurredAt)
		if err != nil {
			return nil, fmt.Errorf("--occurred-at: %w", err)
		}
		env.OccurredAt = t
	}
	if !json.Valid(env.Data) {
		return nil, fmt.Errorf("--data: not valid JSON")
	}
	return json.Marshal(env)
}
