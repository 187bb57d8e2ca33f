package console

import (
	"errors"
	"net/http"
	"strings"

	"github.com/quaycast/quaycast/service"
)

// catalogueData is the event catalogue page: built-in and custom types by group, and the form
// that adds a custom type (admin).
type catalogueData struct {
	Groups []groupView
	Names  []string // the groups, for the form's suggestions
	In     service.EventTypeInput
}

func (c *Console) cataloguePage(w http.ResponseWriter, r *http.Request, p *page) {
	c.showCatalogue(w, r, p, service.EventTypeInput{}, http.StatusOK)
}

func (c *Console) showCatalogue(w http.ResponseWriter, r *http.Request, p *page, in service.EventTypeInput, status int) {
	cat := c.svc.Catalogue()
	f := formFor(cat, endpointForm{}, nil)
	p.Title, p.Nav, p.Data = "Event catalogue", "catalogue", catalogueData{Groups: f.Groups, Names: cat.Groups(), In: in}
	p.Notice = firstNonEmpty(p.Notice, notice(r))
	c.render(w, r, status, "catalogue", p)
}

func (c *Console) createEventType(w http.ResponseWriter, r *http.Request, p *page) {
	in := service.EventTypeInput{Name: strings.TrimSpace(r.PostFormValue("name")), Title: strings.TrimSpace(r.PostFormValue("title")),
		Group: strings.TrimSpace(r.PostFormValue("group")), Description: strings.TrimSpace(r.PostFormValue("description"))}
	_, err := c.svc.CreateEventType(r.Context(), p.caller, in)
	var cf *service.ConflictError
	switch {
	case err == nil:
		redirect(w, r, "/ui/catalogue?done=type-added")
	case errors.As(err, &cf): // a built-in or existing name: beside the name
		p.Errors, p.Error = map[string]string{"name": cf.Reason}, "Not added: correct the fields marked below."
		c.showCatalogue(w, r, p, in, http.StatusConflict)
	case fieldErr(err, p):
		p.Error = "Not added: correct the fields marked below."
		c.showCatalogue(w, r, p, in, http.StatusBadRequest)
	default:
		c.fail(w, r, err, "", p)
	}
}

func (c *Console) deleteEventType(w http.ResponseWriter, r *http.Request, p *page) {
	err := c.svc.DeleteEventType(r.Context(), p.caller, r.PathValue("name"))
	var cf *service.ConflictError
	switch {
	case err == nil:
		redirect(w, r, "/ui/catalogue?done=type-deleted")
	case errors.As(err, &cf): // in use, or built in: said on the catalogue page
		p.Error = "Not deleted: " + cf.Reason
		c.showCatalogue(w, r, p, service.EventTypeInput{}, http.StatusConflict)
	default:
		c.fail(w, r, err, "", p)
	}
}
