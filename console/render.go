package console

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/quaycast/quaycast/internal/fielderr"
	"github.com/quaycast/quaycast/portal"
	"github.com/quaycast/quaycast/service"
)

// page is what every template gets: the layout's parts and the page's own Data.
type page struct {
	Title    string
	Nav      string // the menu entry to mark current
	Open     bool   // no access control: the banner says so
	SignedIn bool
	Portal   string // a tenant's portal session: its tenant
	CSRF     string
	Notice   string            // what just happened, e.g. "Endpoint saved."
	Error    string            // an error not about one field
	Errors   map[string]string // field -> its error, shown beside the field
	Message  string            // the message page's text
	Data     any

	c      *Console
	caller service.Caller
}

// Can reports whether the caller may do op (a service.Op's name): pages show only what it may.
func (p *page) Can(op string) bool {
	return p.c != nil && p.c.svc.Check(p.caller, service.Op(op)) == nil
}

// Tenant is the tenant the caller is limited to (a tenant's token or portal); "" for the operator.
func (p *page) Tenant() string { return p.caller.Tenant() }

// FieldError is the error of a field, or of any field under it (headers.X-Token, event_types[2]).
func (p *page) FieldError(field string) string {
	if e, ok := p.Errors[field]; ok {
		return e
	}
	for k, e := range p.Errors {
		if strings.HasPrefix(k, field+".") || strings.HasPrefix(k, field+"[") {
			return e
		}
	}
	return ""
}

type pageTemplate = template.Template

var funcs = template.FuncMap{
	"ago":     ago,
	"when":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
	"pct":     pct,
	"ms":      ms,
	"join":    strings.Join,
	"deref":   func(p *uint64) uint64 { return *p },
	"add":     func(a, b int) int { return a + b },
	"title":   func(s string) string { return strings.ToUpper(s[:1]) + s[1:] },
	"jsonish": prettyJSON,
	"field":   formField,
	"copy":    copyField,
}

// inputField is one text input of a form, with its error; or, for copyfield, a read-only value
// to copy.
type inputField struct {
	ID, Label, Value, Placeholder, Hint, Error string
}

// formField is the text input id (also its form name) with the error of the service's field
// errField, and a hint when one is given.
func formField(p *page, id, errField, label, value, placeholder string, hint ...string) inputField {
	return inputField{ID: id, Label: label, Value: value, Placeholder: placeholder, Hint: strings.Join(hint, " "), Error: p.FieldError(errField)}
}

// copyField is a read-only value shown with a copy button (a secret shown this once), id its
// input's id.
func copyField(id, label, value string) inputField {
	return inputField{ID: id, Label: label, Value: value}
}

// parsePages parses every page with the layout.
func parsePages() map[string]*pageTemplate {
	layout := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/parts.html"))
	names, _ := fs.Glob(templateFS, "templates/*.html")
	out := map[string]*pageTemplate{}
	for _, n := range names {
		base := path.Base(n)
		if base == "layout.html" || base == "parts.html" {
			continue
		}
		out[strings.TrimSuffix(base, ".html")] = template.Must(template.Must(layout.Clone()).ParseFS(templateFS, n))
	}
	return out
}

// render writes page name with status: into a buffer first, so that a template error is a 500
// rather than half a page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, p *page) {
	if p.c == nil {
		p.c = c
	}
	if !c.svc.AccessControl() {
		p.Open = true
	}
	p.CSRF = csrfToken(w, r)
	var buf bytes.Buffer
	if err := c.pages[name].ExecuteTemplate(&buf, "layout.html", p); err != nil {
		c.log.Error().Err(err).Str("page", name).Msg("console: render")
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// fail shows a service error: a field error beside its field (on the page given), forbidden,
// not found and conflicts on a message page, anything else logged and shown as an internal
// error. It returns the status written.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error, name string, p *page) {
	var (
		fe *fielderr.Error
		nf *service.NotFoundError
		fb *service.ForbiddenError
		cf *service.ConflictError
	)
	switch {
	case name != "" && fieldErr(err, p):
		p.Error = "Not saved: correct the fields marked below."
		c.render(w, r, http.StatusBadRequest, name, p)
	case errors.As(err, &fe) && !fe.Flag:
		c.message(w, r, p, http.StatusBadRequest, "Bad request", fe.Field+": "+fe.Reason)
	case errors.As(err, &fb) && fb.Tenant:
		c.message(w, r, p, http.StatusForbidden, "Not allowed", "This is the operator's to do, not a tenant's.")
	case errors.As(err, &fb):
		c.message(w, r, p, http.StatusForbidden, "Not allowed", "Your token lacks the scope "+fb.Scope+" this needs.")
	case errors.As(err, &nf):
		c.message(w, r, p, http.StatusNotFound, "Not found", "There is no "+nf.Kind+" with this id.")
	case errors.As(err, &cf):
		c.message(w, r, p, http.StatusConflict, "Not offered here", cf.Reason)
	case errors.Is(err, r.Context().Err()):
		c.message(w, r, p, http.StatusServiceUnavailable, "Cancelled", "The request was cancelled.")
	default:
		c.log.Error().Err(err).Str("method", r.Method).Str("path", portal.RedactPath(r.URL.Path)).Msg("console request")
		c.message(w, r, p, http.StatusInternalServerError, "Internal error", "Something went wrong on the gateway; its log says what.")
	}
}

// fieldErr puts a field error (not a flag's) beside its field in p, saying the form was not
// created; false for any other error.
func fieldErr(err error, p *page) bool {
	var f *fielderr.Error
	if !errors.As(err, &f) || f.Flag {
		return false
	}
	if p.Errors == nil {
		p.Errors = map[string]string{}
	}
	p.Errors[f.Field] = f.Reason
	p.Error = "Not created: correct the fields marked below."
	return true
}

func (c *Console) message(w http.ResponseWriter, r *http.Request, p *page, status int, title, msg string) {
	q := &page{c: c, caller: p.caller, Open: p.Open, SignedIn: p.SignedIn, Portal: p.Portal, Title: title, Message: msg}
	c.render(w, r, status, "message", q)
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := time.Since(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + " s ago"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + " min ago"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + " h ago"
	}
	return t.UTC().Format("2006-01-02")
}

func pct(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	return strconv.FormatFloat(v*100, 'f', 1, 64) + " %"
}

func ms(v float64) string {
	switch {
	case math.IsNaN(v):
		return "–"
	case v >= 1000:
		return strconv.FormatFloat(v/1000, 'f', 1, 64) + " s"
	}
	return strconv.FormatFloat(v, 'f', 0, 64) + " ms"
}

// prettyJSON indents a JSON text for reading; other text as it is.
func prettyJSON(b []byte) string {
	var out bytes.Buffer
	if err := jsonIndent(&out, b); err != nil {
		return string(b)
	}
	return out.String()
}

func redirect(w http.ResponseWriter, r *http.Request, format string, a ...any) {
	http.Redirect(w, r, fmt.Sprintf(format, a...), http.StatusSeeOther)
}
