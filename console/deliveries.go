package console

import (
	"bytes"
	"encoding/json"
	"io"
	"iter"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/service"
)

// attemptView is one delivery-log record as the console reads it: the gateway's JSON, whose
// credential headers the sender redacted when it wrote the record.
type attemptView struct {
	Seq        uint64
	ID         string    `json:"id"`
	EndpointID string    `json:"endpoint_id"`
	EventID    string    `json:"event_id"`
	Type       string    `json:"type"`
	Entity     string    `json:"entity"`
	Attempt    int       `json:"attempt"`
	Test       bool      `json:"test"`
	At         time.Time `json:"at"`
	DurationMS float64   `json:"duration_ms"`
	Outcome    string    `json:"outcome"`
	Error      string    `json:"error"`
	Request    struct {
		URL     string            `json:"url"`
		Headers map[string]string `json:"headers"`
	} `json:"request"`
	Response *struct {
		Status    int               `json:"status"`
		Headers   map[string]string `json:"headers"`
		Body      string            `json:"body"`
		Truncated bool              `json:"truncated"`
	} `json:"response"`
	ReplyError string `json:"reply_error"`
	Alerts     []struct {
		Message string `json:"message"`
		Level   string `json:"level"`
	} `json:"alerts"`
}

func readAttempt(raw []byte) (*attemptView, error) {
	var a attemptView
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// Status is the reply's HTTP status, or "–" without a reply.
func (a *attemptView) Status() string {
	if a.Response == nil {
		return "–"
	}
	return strconv.Itoa(a.Response.Status)
}

// RequestHeaders and ResponseHeaders are in name order.
func (a *attemptView) RequestHeaders() [][2]string { return sortedPairs(a.Request.Headers) }

func (a *attemptView) ResponseHeaders() [][2]string {
	if a.Response == nil {
		return nil
	}
	return sortedPairs(a.Response.Headers)
}

func sortedPairs(m map[string]string) [][2]string {
	out := make([][2]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, [2]string{k, m[k]})
	}
	return out
}

// deliveriesData is a page of the delivery log with its filters.
type deliveriesData struct {
	ID, EventID                 string // the endpoint's, or the event's
	Status, Since, Until, Limit string
	Rows                        []*attemptView
	Next                        string // the next page's link
}

func (c *Console) deliveriesPage(w http.ResponseWriter, r *http.Request, p *page) {
	id := r.PathValue("id")
	d, f := deliveryFilters(r)
	d.ID = id
	p.Title, p.Nav, p.Data = "Deliveries of "+id, "endpoints", d
	if err := c.svc.Check(p.caller, service.OpListDeliveries); err != nil {
		c.fail(w, r, err, "", p)
		return
	}
	page, err := c.svc.EndpointDeliveries(r.Context(), p.caller, id, f)
	c.deliveries(w, r, p, d, page, err, "/ui/endpoints/"+escapePath(id)+"/deliveries")
}

// eventDeliveriesPage is the delivery log of one event across endpoints (?id=).
func (c *Console) eventDeliveriesPage(w http.ResponseWriter, r *http.Request, p *page) {
	d, f := deliveryFilters(r)
	d.EventID = r.URL.Query().Get("id")
	p.Title, p.Nav, p.Data = "Deliveries of an event", "endpoints", d
	if d.EventID == "" {
		c.render(w, r, http.StatusOK, "deliveries", p)
		return
	}
	page, err := c.svc.EventDeliveries(r.Context(), p.caller, d.EventID, f)
	c.deliveries(w, r, p, d, page, err, "/ui/events")
}

func (c *Console) deliveries(w http.ResponseWriter, r *http.Request, p *page, d *deliveriesData, page *service.DeliveryPage, err error, base string) {
	if err != nil {
		c.fail(w, r, err, "deliveries", p)
		return
	}
	for i, raw := range page.Deliveries {
		a, err := readAttempt(raw)
		if err != nil {
			continue
		}
		a.Seq = page.Seqs[i]
		d.Rows = append(d.Rows, a)
	}
	if page.NextCursor != "" {
		q := r.URL.Query()
		q.Set("after", page.NextCursor)
		d.Next = base + "?" + q.Encode()
	}
	c.render(w, r, http.StatusOK, "deliveries", p)
}

func deliveryFilters(r *http.Request) (*deliveriesData, service.DeliveryFilter) {
	q := r.URL.Query()
	d := &deliveriesData{Status: q.Get("status"), Since: q.Get("since"), Until: q.Get("until"), Limit: q.Get("limit")}
	return d, service.DeliveryFilter{
		Page:   service.Page{Limit: d.Limit, After: q.Get("after")},
		Status: d.Status, Since: d.Since, Until: d.Until,
	}
}

// deliveryData is one attempt's detail: what was sent and what came back.
type deliveryData struct {
	*attemptView
	Body string // the request body: the event as published
}

// Record is the attempt, for the template that shows an exchange.
func (d deliveryData) Record() *attemptView { return d.attemptView }

func (c *Console) deliveryPage(w http.ResponseWriter, r *http.Request, p *page) {
	id := r.PathValue("id")
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil {
		c.fail(w, r, &service.NotFoundError{Kind: "delivery"}, "", p)
		return
	}
	got, err := c.svc.Delivery(r.Context(), p.caller, id, seq)
	if err != nil {
		c.fail(w, r, err, "", p)
		return
	}
	a, err := readAttempt(got.Record)
	if err != nil {
		c.fail(w, r, err, "", p)
		return
	}
	a.Seq = seq
	d := deliveryData{attemptView: a}
	if got.Body != nil {
		d.Body = prettyJSON(got.Body)
	}
	p.Title, p.Nav, p.Data = "Attempt "+a.ID, "endpoints", d
	c.render(w, r, http.StatusOK, "delivery", p)
}

// deadLettersData is a page of an endpoint's dead letters.
type deadLettersData struct {
	ID   string
	Rows []consumer.DeadLetter
	Next string
}

func (c *Console) deadLettersPage(w http.ResponseWriter, r *http.Request, p *page) {
	id := r.PathValue("id")
	q := r.URL.Query()
	page, err := c.svc.DeadLetters(r.Context(), p.caller, id, service.Page{Limit: q.Get("limit"), After: q.Get("after")})
	if err != nil {
		c.fail(w, r, err, "", p)
		return
	}
	d := deadLettersData{ID: id, Rows: page.DeadLetters}
	if page.NextCursor != "" {
		d.Next = "/ui/endpoints/" + escapePath(id) + "/dead-letters?after=" + url.QueryEscape(page.NextCursor)
	}
	p.Title, p.Nav, p.Data = "Dead letters of "+id, "endpoints", d
	if n := q.Get("replayed"); n != "" {
		if k, err := strconv.Atoi(n); err == nil {
			p.Notice = strconv.Itoa(k) + " dead letters replayed: they are delivered again, in their original order."
		}
	}
	p.Notice = firstNonEmpty(p.Notice, notice(r))
	c.render(w, r, http.StatusOK, "deadletters", p)
}

func (c *Console) replay(w http.ResponseWriter, r *http.Request, p *page) {
	id := r.PathValue("id")
	in := service.ReplayInput{}
	switch {
	case r.PostFormValue("all") == "true":
	case r.PostFormValue("pick") == "true": // by entity and when they were dead-lettered
		for _, e := range strings.Split(r.PostFormValue("entities"), ",") {
			if e = strings.TrimSpace(e); e != "" {
				in.Entities = append(in.Entities, e)
			}
		}
		in.Since, in.Until = utcField(r.PostFormValue("since")), utcField(r.PostFormValue("until"))
	default:
		in.EventIDs = r.PostForm["event_id"]
		if len(in.EventIDs) == 0 {
			c.message(w, r, p, http.StatusBadRequest, "Nothing selected", "Select the dead letters to replay, or replay all.")
			return
		}
	}
	n, err := c.svc.ReplayDeadLetters(r.Context(), p.caller, id, in)
	if err != nil {
		c.fail(w, r, err, "", p)
		return
	}
	redirect(w, r, "/ui/endpoints/%s/dead-letters?replayed=%d", escapePath(id), n)
}

// utcField is a datetime-local input's value ("2026-11-30T14:00") as RFC 3339 in UTC; other
// text is passed on for the service to refuse, naming the field.
func utcField(v string) string {
	if v == "" || strings.HasSuffix(v, "Z") || strings.Count(v, ":") != 1 {
		return v
	}
	return v + ":00Z"
}

func (c *Console) purgePage(w http.ResponseWriter, r *http.Request, p *page) {
	d, ok := c.endpointFor(w, r, p, service.OpPurgeDeadLetters)
	if !ok {
		return
	}
	p.Title, p.Nav, p.Data = "Purge dead letters of "+d.ID, "endpoints", d
	c.render(w, r, http.StatusOK, "purge", p)
}

func (c *Console) purge(w http.ResponseWriter, r *http.Request, p *page) {
	id := r.PathValue("id")
	if err := c.svc.PurgeDeadLetters(r.Context(), p.caller, id); err != nil {
		c.fail(w, r, err, "", p)
		return
	}
	redirect(w, r, "/ui/endpoints/%s/dead-letters?done=purged", escapePath(id))
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func escapePath(s string) string { return url.PathEscape(s) }

func encode(v map[string]string) string {
	q := url.Values{}
	for k, x := range v {
		q.Set(k, x)
	}
	return q.Encode()
}

func mapsKeys(m map[string]string) iter.Seq[string] { return maps.Keys(m) }

func jsonIndent(w io.Writer, b []byte) error {
	var out bytes.Buffer
	if err := json.Indent(&out, bytes.TrimSpace(b), "", "  "); err != nil {
		return err
	}
	_, err := out.WriteTo(w)
	return err
}
