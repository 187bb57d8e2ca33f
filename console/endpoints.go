package console

import (
	"cmp"
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/gateway/signature"
	"github.com/quaycast/quaycast/internal/fielderr"
	"github.com/quaycast/quaycast/service"
	"github.com/quaycast/quaycast/subjects"
)

// notices are what a redirect after a change says on the next page, by a fixed key (never text
// from the request).
var notices = map[string]string{
	"saved": "Endpoint saved.", "enabled": "Endpoint enabled.", "disabled": "Endpoint disabled.",
	"deleted": "Endpoint deleted.", "purged": "Dead letters purged.", "revoked": "Revoked.",
	"type-added": "Event type added.", "type-deleted": "Event type deleted.",
	"tenant-added": "Tenant created.", "tenant-deleted": "Tenant deleted.",
}

func notice(r *http.Request) string { return notices[r.URL.Query().Get("done")] }

// endpointRow is one endpoint in the list.
type endpointRow struct {
	ID, URL, Description string
	Tenant               string // its tenant; "" the operator's
	Enabled              bool
	Disabled             string // why quaycast disabled it
	State, Breaker       string
	Owner                string
	Backlog              string
	backlog              float64
	DeadLetters          uint64
	Attempts             uint64
	Success, P99         string
	success, p99         float64
	Last                 string
	last                 time.Time
	Problem              string // a target or secret error
}

type endpointsData struct {
	Rows          []endpointRow
	Total         int
	Q, State      string
	Sort, Dir     string
	Columns       []column
	Partial       bool // some figures could not be read
	FiguresOff    bool // no figures kept on this gateway
	SingleGateway bool
}

// column is a sortable column's header.
type column struct {
	Key, Label, Href, AriaSort string
}

var sortKeys = []struct{ key, label string }{
	{"url", "Endpoint"}, {"state", "State"}, {"breaker", "Breaker"}, {"backlog", "Backlog"}, {"dead", "Dead letters"},
	{"success", "Success (1 h)"}, {"p99", "p99 (1 h)"}, {"last", "Last delivery"},
}

func (c *Console) endpointsPage(w http.ResponseWriter, r *http.Request, p *page) {
	list, partial, err := c.svc.Overview(r.Context(), p.caller)
	if err != nil {
		c.fail(w, r, err, "", p)
		return
	}
	for _, e := range partial {
		c.log.Warn().Err(e).Msg("console: endpoint overview incomplete")
	}
	q := r.URL.Query()
	d := endpointsData{Q: strings.TrimSpace(q.Get("q")), State: q.Get("state"), Sort: q.Get("sort"), Dir: q.Get("dir"), Partial: len(partial) > 0}
	if d.Dir != "desc" {
		d.Dir = "asc"
	}
	d.Total = len(list)
	for _, e := range list {
		row := endpointRow{
			ID: e.ID, URL: e.URL, Description: e.Description, Tenant: e.Tenant, Enabled: e.Enabled, Disabled: e.DisabledReason,
			State: e.State, Breaker: "–", Backlog: "–", backlog: -1, DeadLetters: e.DeadLetters,
			Success: "–", P99: "–", success: -1, p99: -1, Last: "none in the last hour", Problem: e.TargetError,
		}
		if e.SecretErr != nil {
			row.Problem = "its secret cannot be read: start the gateway with the --secret-key that sealed it"
		}
		if e.Owner != nil {
			row.Owner = e.Owner.Name
		}
		if e.State != service.StateElsewhere {
			row.Breaker = e.Breaker.State
		}
		if e.BacklogKnown {
			row.Backlog, row.backlog = strconv.FormatUint(e.Backlog, 10), float64(e.Backlog)
		}
		if h := e.Hour; h != nil {
			row.Attempts = h.Attempts()
			row.success, row.p99 = h.SuccessRate(), h.Quantile(0.99)
			row.Success, row.P99 = pct(row.success), ms(row.p99)
			if !h.LastDelivered.IsZero() {
				row.last, row.Last = h.LastDelivered, ago(h.LastDelivered)
			}
		}
		if !d.matches(row) {
			continue
		}
		d.Rows = append(d.Rows, row)
	}
	d.sort()
	d.Columns = d.columns()
	p.Title, p.Nav, p.Data, p.Notice = "Endpoints", "endpoints", d, notice(r)
	c.render(w, r, http.StatusOK, "endpoints", p)
}

// matches applies the list's filters: text in the id, URL or description, and a state.
func (d *endpointsData) matches(row endpointRow) bool {
	if d.Q != "" {
		q := strings.ToLower(d.Q)
		if !strings.Contains(strings.ToLower(row.ID+" "+row.URL+" "+row.Description+" "+row.Tenant), q) {
			return false
		}
	}
	switch d.State {
	case "enabled":
		return row.Enabled
	case "disabled":
		return !row.Enabled
	case "failing":
		return row.Breaker == "open" || row.Breaker == "half-open" || row.DeadLetters > 0 || row.success >= 0 && row.success < 1
	case "dead":
		return row.DeadLetters > 0
	}
	return true
}

func (d *endpointsData) sort() {
	by := map[string]func(a, b endpointRow) int{
		"url":     func(a, b endpointRow) int { return strings.Compare(a.URL, b.URL) },
		"state":   func(a, b endpointRow) int { return strings.Compare(a.State, b.State) },
		"breaker": func(a, b endpointRow) int { return strings.Compare(a.Breaker, b.Breaker) },
		"backlog": func(a, b endpointRow) int { return cmp.Compare(a.backlog, b.backlog) },
		"dead":    func(a, b endpointRow) int { return cmp.Compare(a.DeadLetters, b.DeadLetters) },
		"success": func(a, b endpointRow) int { return cmpNaN(a.success, b.success) },
		"p99":     func(a, b endpointRow) int { return cmpNaN(a.p99, b.p99) },
		"last":    func(a, b endpointRow) int { return a.last.Compare(b.last) },
	}
	f, ok := by[d.Sort]
	if !ok {
		d.Sort = ""
		return // as created, oldest first
	}
	slices.SortStableFunc(d.Rows, func(a, b endpointRow) int {
		if d.Dir == "desc" {
			return f(b, a)
		}
		return f(a, b)
	})
}

func cmpNaN(a, b float64) int {
	if math.IsNaN(a) {
		a = -1
	}
	if math.IsNaN(b) {
		b = -1
	}
	return cmp.Compare(a, b)
}

// columns are the headers' links: each sorts by its column, the current one the other way.
func (d *endpointsData) columns() []column {
	out := make([]column, len(sortKeys))
	for i, k := range sortKeys {
		dir, aria := "asc", ""
		if d.Sort == k.key {
			aria = map[string]string{"asc": "ascending", "desc": "descending"}[d.Dir]
			if d.Dir == "asc" {
				dir = "desc"
			}
		}
		v := map[string]string{"sort": k.key, "dir": dir}
		if d.Q != "" {
			v["q"] = d.Q
		}
		if d.State != "" {
			v["state"] = d.State
		}
		out[i] = column{Key: k.key, Label: k.label, Href: "/ui/endpoints?" + encode(v), AriaSort: aria}
	}
	return out
}

// endpointForm is the create and edit form's content.
type endpointForm struct {
	ID          string
	URL         string
	Description string
	Headers     string // one "Name: value" per line
	All         bool   // every event type ("*")
	Groups      []groupView
	Profile     string
	HeaderName  string
	HexCase     string
	ReplyFormat string
	Condition   string
	Enabled     bool
	Profiles    []string

	// Ownership, for the operator: the tenant (chosen at creation, shown after), the tenants to
	// choose from, and whether an operator's endpoint gets tenants' events too.
	Operator     bool
	Tenant       string
	Tenants      []tenantRow
	TenantEvents bool

	Layout          string // a preset's name or layoutCustom
	Presets         []presetView
	EventName       string // "" as the preset says, or a consumer.EventName*
	EventHeader     string // custom layouts: the header names and what they carry
	DeliveryHeader  string
	DeliveryID      string
	TimestampHeader string
	TimestampFormat string
	QuaycastHeaders bool
	TypeField       string // body: the mirrored event type's field
	Fields          string // body: JSON Pointers, one per line
	Selectors       string // selectors the toggles do not show (source-qualified), one per line
}

type groupView struct {
	Name    string
	All     bool // "group:<name>"
	Systems string
	Types   []typeView
}

type typeView struct {
	Name, Title, Description string
	Checked                  bool
	Custom                   bool // added at run time, not built in
}

// formFor is the form showing selectors (the endpoint's event types) and the rest of f.
func formFor(cat *subjects.Catalogue, f endpointForm, selectors []string) endpointForm {
	sel := map[string]bool{}
	for _, s := range selectors {
		sel[s] = true
	}
	f.All = sel[subjects.SelectAll]
	f.Profiles = []string{string(signature.Standard), string(signature.Hub), string(signature.Hex)}
	f.Presets = presetViews()
	byGroup := map[string]*groupView{}
	for _, g := range cat.Groups() {
		f.Groups = append(f.Groups, groupView{Name: g, All: sel[subjects.GroupPrefix+g]})
	}
	for i := range f.Groups {
		byGroup[f.Groups[i].Name] = &f.Groups[i]
	}
	systems := map[string][]string{}
	for _, t := range cat.Types() {
		g := byGroup[t.Group]
		g.Types = append(g.Types, typeView{Name: t.Name, Title: t.Title, Description: t.Description, Checked: sel[t.Name], Custom: t.System == subjects.SystemCustom})
		if !slices.Contains(systems[t.Group], t.System) {
			systems[t.Group] = append(systems[t.Group], t.System)
		}
	}
	for i := range f.Groups {
		f.Groups[i].Systems = strings.ToUpper(strings.Join(systems[f.Groups[i].Name], ", "))
	}
	return f
}

// readForm reads the posted form into an input and the form to show again. current are the
// endpoint's headers on an edit: a value left as the console showed it (redacted) keeps the
// stored one. picked is how many of the input's event types came from the toggles, before the
// typed selectors. fe is the form's first error: a header that is not one, or no event type.
func (c *Console) readForm(r *http.Request, current map[string]string) (in service.EndpointInput, f endpointForm, picked int, fe *fielderr.Error) {
	f = endpointForm{
		URL: strings.TrimSpace(r.PostFormValue("url")), Description: r.PostFormValue("description"),
		Headers: r.PostFormValue("headers"), Profile: r.PostFormValue("signing_profile"),
		HeaderName: strings.TrimSpace(r.PostFormValue("signing_header_name")), HexCase: r.PostFormValue("signing_hex_case"),
		ReplyFormat: r.PostFormValue("reply_format"), Condition: strings.TrimSpace(r.PostFormValue("condition")),
	}
	selectors := r.PostForm["event_types"]
	cat := c.svc.Catalogue()
	f = formFor(cat, f, selectors)
	types := selectors
	if slices.Contains(selectors, subjects.SelectAll) {
		types = []string{subjects.SelectAll}
	} else { // a whole group selected stands for its members
		types = slices.DeleteFunc(slices.Clone(selectors), func(s string) bool {
			t, ok := cat.Lookup(s)
			return ok && slices.Contains(selectors, subjects.GroupPrefix+t.Group)
		})
	}
	picked = len(types)
	f.Selectors = r.PostFormValue("selectors")
	types = append(slices.Clip(types), selectorsOf(f.Selectors)...)
	headers, fe := c.parseHeaders(f.Headers, current)
	in = service.EndpointInput{
		URL: &f.URL, EventTypes: &types, Description: &f.Description, Headers: &headers,
		Signing: &service.SigningInput{Profile: f.Profile, HeaderName: f.HeaderName}, ReplyFormat: &f.ReplyFormat,
		Condition: &f.Condition,
	}
	if f.Profile == string(signature.Hex) {
		in.Signing.HexCase = f.HexCase
	}
	if f.Profile != string(signature.Hub) && f.Profile != string(signature.Hex) {
		in.Signing.HeaderName = "" // the standard profile's headers are fixed
	}
	readLayout(r, &f, &in)
	if f.Profile == profilePreset {
		in.Signing = nil // the layout preset brings its own
	}
	if fe == nil && len(types) == 0 {
		fe = &fielderr.Error{Field: "event_types", Reason: "choose at least one event type"}
	}
	return in, f, picked, fe
}

// parseHeaders reads "Name: value" lines.
func (c *Console) parseHeaders(text string, current map[string]string) (map[string]string, *fielderr.Error) {
	out := map[string]string{}
	for i, line := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || name == "" {
			return nil, &fielderr.Error{Field: "headers", Reason: "line " + strconv.Itoa(i+1) + " is not \"Name: value\""}
		}
		if old, ok := current[name]; ok && value == c.o.ShownHeader(name, old) {
			value = old
		}
		out[name] = value
	}
	return out, nil
}

// headersText is an endpoint's headers as the form shows them, credentials redacted as the API
// shows them.
func (c *Console) headersText(h map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(mapsKeys(h)) {
		b.WriteString(k + ": " + c.o.ShownHeader(k, h[k]) + "\n")
	}
	return b.String()
}

func (c *Console) newEndpointPage(w http.ResponseWriter, r *http.Request, p *page) {
	if err := c.svc.Check(p.caller, service.OpCreateEndpoint); err != nil {
		c.fail(w, r, err, "", p)
		return
	}
	p.Title, p.Nav = "New endpoint", "endpoints"
	f := endpointForm{Enabled: true}
	f.setLayout(consumer.Layout{}, consumer.Signing{})
	c.ownerForm(r, p, &f, true)
	p.Data = formFor(c.svc.Catalogue(), f, nil)
	c.render(w, r, http.StatusOK, "form", p)
}

func (c *Console) createEndpoint(w http.ResponseWriter, r *http.Request, p *page) {
	p.Title, p.Nav = "New endpoint", "endpoints"
	in, f, picked, fe := c.readForm(r, nil)
	if c.ownerForm(r, p, &f, true) {
		if f.Tenant != "" {
			in.Tenant = &f.Tenant
		} else {
			in.TenantEvents = &f.TenantEvents
		}
	}
	p.Data = f
	if fe != nil {
		c.fail(w, r, fe, "form", p)
		return
	}
	ep, err := c.svc.CreateEndpoint(r.Context(), p.caller, in)
	if err != nil {
		c.fail(w, r, formError(err, picked, selectorsOf(f.Selectors), lines(f.Fields)), "form", p)
		return
	}
	p.Title, p.Data = "Endpoint created", secretData{ID: ep.ID, URL: ep.URL, Secret: ep.Secret, Warnings: ep.Warnings, Created: true}
	c.render(w, r, http.StatusCreated, "secret", p)
}

// secretData is the page that shows a secret, this once.
type secretData struct {
	ID, URL, Secret string
	Warnings        []string
	Created         bool
	Grace           string
}

func (c *Console) endpointPage(w http.ResponseWriter, r *http.Request, p *page) {
	d, err := c.svc.Endpoint(r.Context(), p.caller, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err, "", p)
		return
	}
	v := endpointView{EndpointDetail: d, Headers: c.headersText(d.Headers), Signing: signingOf(d.Signing.Profile, d.Signing.HeaderName, d.Signing.HexUpper),
		Layout: viewLayout(d.Endpoint.Endpoint)}
	for _, prev := range d.PreviousSecrets {
		if time.Now().Before(prev.Until) {
			v.Rotations = append(v.Rotations, prev.Until)
		}
	}
	if p.Can(string(service.OpViewFigures)) {
		mins, err := c.svc.Figures(r.Context(), p.caller, d.ID)
		if err != nil {
			c.log.Warn().Err(err).Str("endpoint_id", d.ID).Msg("console: read figures")
		}
		v.Charts = endpointCharts(mins)
	}
	p.Title, p.Nav, p.Data, p.Notice = "Endpoint "+d.ID, "endpoints", v, notice(r)
	c.render(w, r, http.StatusOK, "endpoint", p)
}

type endpointView struct {
	*service.EndpointDetail
	Headers   string
	Signing   string
	Layout    layoutView
	Rotations []time.Time
	Charts    *charts
}

func signingOf(profile, header string, upper bool) string {
	switch profile {
	case "", string(signature.Standard):
		return "Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature)"
	case string(signature.Hub):
		if header == "" {
			header = signature.DefaultHubHeader
		}
		return "sha256=<hex> in " + header
	}
	c := "lower"
	if upper {
		c = "upper"
	}
	return "plain hex (" + c + " case) in " + header
}

func (c *Console) editEndpointPage(w http.ResponseWriter, r *http.Request, p *page) {
	d, ok := c.endpointFor(w, r, p, service.OpPatchEndpoint)
	if !ok {
		return
	}
	f := endpointForm{ID: d.ID, URL: d.URL, Description: d.Description, Headers: c.headersText(d.Headers),
		ReplyFormat: d.ReplyFormat, Condition: d.Condition, Enabled: d.Enabled, TypeField: d.Body.TypeField, Fields: strings.Join(d.Body.Fields, "\n")}
	f.setLayout(d.Layout, d.Signing)
	f.Tenant, f.TenantEvents, f.Operator = d.Tenant, d.TenantEvents, p.caller.Tenant() == ""
	cat := c.svc.Catalogue()
	toggles, other := splitSelectors(cat, d.EventTypes)
	f.Selectors = strings.Join(other, "\n")
	p.Title, p.Nav, p.Data = "Edit endpoint "+d.ID, "endpoints", formFor(cat, f, toggles)
	c.render(w, r, http.StatusOK, "form", p)
}

func (c *Console) editEndpoint(w http.ResponseWriter, r *http.Request, p *page) {
	id := r.PathValue("id")
	if err := c.svc.Check(p.caller, service.OpPatchEndpoint); err != nil {
		c.fail(w, r, err, "", p)
		return
	}
	cur, err := c.svc.Endpoint(r.Context(), p.caller, id)
	if err != nil {
		c.fail(w, r, err, "", p)
		return
	}
	in, f, picked, fe := c.readForm(r, cur.Headers)
	f.ID, f.Enabled = id, cur.Enabled
	f.Tenant, f.Operator = cur.Tenant, p.caller.Tenant() == ""
	if f.Operator && cur.Tenant == "" {
		f.TenantEvents = r.PostFormValue("tenant_events") == "true"
		in.TenantEvents = &f.TenantEvents
	}
	p.Title, p.Nav, p.Data = "Edit endpoint "+id, "endpoints", f
	if fe != nil {
		c.fail(w, r, fe, "form", p)
		return
	}
	if _, err := c.svc.PatchEndpoint(r.Context(), p.caller, id, in); err != nil {
		c.fail(w, r, formError(err, picked, selectorsOf(f.Selectors), lines(f.Fields)), "form", p)
		return
	}
	redirect(w, r, "/ui/endpoints/%s?done=saved", escapePath(id))
}

func (c *Console) setEnabled(w http.ResponseWriter, r *http.Request, p *page) {
	id := r.PathValue("id")
	on := r.PostFormValue("enabled") == "true"
	if _, err := c.svc.PatchEndpoint(r.Context(), p.caller, id, service.EndpointInput{Enabled: &on}); err != nil {
		c.fail(w, r, err, "", p)
		return
	}
	done := "disabled"
	if on {
		done = "enabled"
	}
	redirect(w, r, "/ui/endpoints/%s?done=%s", escapePath(id), done)
}

func (c *Console) rotateSecret(w http.ResponseWriter, r *http.Request, p *page) {
	id := r.PathValue("id")
	grace := strings.TrimSpace(r.PostFormValue("grace"))
	ep, err := c.svc.RotateSecret(r.Context(), p.caller, id, service.RotateInput{Grace: grace})
	if err != nil {
		c.fail(w, r, err, "", p)
		return
	}
	p.Title, p.Nav = "Secret rotated", "endpoints"
	p.Data = secretData{ID: ep.ID, URL: ep.URL, Secret: ep.Secret, Grace: cmp.Or(grace, "24h")}
	c.render(w, r, http.StatusOK, "secret", p)
}

// endpointFor reads the endpoint of a page that leads to op (an edit, a delete), once the
// caller may do op; otherwise it shows why and returns false.
func (c *Console) endpointFor(w http.ResponseWriter, r *http.Request, p *page, op service.Op) (*service.EndpointDetail, bool) {
	if err := c.svc.Check(p.caller, op); err != nil {
		c.fail(w, r, err, "", p)
		return nil, false
	}
	d, err := c.svc.Endpoint(r.Context(), p.caller, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err, "", p)
		return nil, false
	}
	return d, true
}

func (c *Console) deletePage(w http.ResponseWriter, r *http.Request, p *page) {
	d, ok := c.endpointFor(w, r, p, service.OpDeleteEndpoint)
	if !ok {
		return
	}
	p.Title, p.Nav, p.Data = "Delete endpoint "+d.ID, "endpoints", d
	c.render(w, r, http.StatusOK, "delete", p)
}

func (c *Console) deleteEndpoint(w http.ResponseWriter, r *http.Request, p *page) {
	if err := c.svc.DeleteEndpoint(r.Context(), p.caller, r.PathValue("id")); err != nil {
		c.fail(w, r, err, "", p)
		return
	}
	redirect(w, r, "/ui/endpoints?done=deleted")
}

// testData is the test-send page: the form, and the answer once sent.
type testData struct {
	ID, URL      string
	Types        []string
	Type, Entity string
	Data         string
	Result       *attemptView
}

func (c *Console) testPage(w http.ResponseWriter, r *http.Request, p *page) {
	d, err := c.testForm(r, p)
	if err != nil {
		c.fail(w, r, err, "", p)
		return
	}
	p.Data = d
	c.render(w, r, http.StatusOK, "test", p)
}

func (c *Console) testForm(r *http.Request, p *page) (*testData, error) {
	if err := c.svc.Check(p.caller, service.OpTestSend); err != nil {
		return nil, err
	}
	ep, err := c.svc.Endpoint(r.Context(), p.caller, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	types, _ := subjects.Expand(ep.EventTypes)
	p.Title, p.Nav = "Test send to "+ep.ID, "endpoints"
	return &testData{ID: ep.ID, URL: ep.URL, Types: types, Data: `{"test": true}`}, nil
}

func (c *Console) testSend(w http.ResponseWriter, r *http.Request, p *page) {
	d, err := c.testForm(r, p)
	if err != nil {
		c.fail(w, r, err, "", p)
		return
	}
	d.Type, d.Entity, d.Data = r.PostFormValue("type"), strings.TrimSpace(r.PostFormValue("entity")), strings.TrimSpace(r.PostFormValue("data"))
	p.Data = d
	in := service.TestInput{Type: d.Type, Entity: d.Entity}
	if d.Data != "" {
		if !json.Valid([]byte(d.Data)) {
			c.fail(w, r, &fielderr.Error{Field: "data", Reason: "must be JSON, e.g. {\"test\": true}"}, "test", p)
			return
		}
		in.Data = json.RawMessage(d.Data)
	}
	raw, err := c.svc.TestSend(r.Context(), p.caller, d.ID, in)
	if err != nil {
		c.fail(w, r, err, "test", p)
		return
	}
	a, err := readAttempt(raw)
	if err != nil {
		c.fail(w, r, err, "", p)
		return
	}
	d.Result = a
	c.render(w, r, http.StatusOK, "test", p)
}

// ownerForm fills the form's ownership for an operator: on a create, the tenants to choose from
// and, from a posted form, the choice. It reports whether the caller is the operator, who alone
// chooses (a tenant's endpoints are its own).
func (c *Console) ownerForm(r *http.Request, p *page, f *endpointForm, create bool) bool {
	if p.caller.Tenant() != "" {
		return false
	}
	f.Operator = true
	if r.Method == http.MethodPost {
		f.Tenant = strings.TrimSpace(r.PostFormValue("tenant"))
		f.TenantEvents = f.Tenant == "" && r.PostFormValue("tenant_events") == "true"
	}
	if create {
		if list, err := c.svc.Tenants(r.Context(), p.caller); err == nil {
			for _, t := range list {
				f.Tenants = append(f.Tenants, tenantRow{ID: t.ID, Name: t.Name})
			}
		}
	}
	return true
}
