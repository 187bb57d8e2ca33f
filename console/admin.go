package console

import (
	"errors"
	"net/http"
	"strings"

	"github.com/quaycast/quaycast/natsauth"
	"github.com/quaycast/quaycast/service"
	"github.com/quaycast/quaycast/tokens"
)

// credentialsData is the tokens or the publishers page: the list, the create form, and a new
// credential shown this once.
type credentialsData struct {
	Tokens     []*tokens.Token
	Publishers []*natsauth.Publisher
	Scopes     []string
	Name       string
	Chosen     map[string]bool
	Sources    string
	Replies    bool
	NewSecret  string
	NewName    string
	Conflict   string // publishers are not managed here
}

func (c *Console) tokensPage(w http.ResponseWriter, r *http.Request, p *page) {
	c.showTokens(w, r, p, &credentialsData{}, http.StatusOK)
}

func (c *Console) showTokens(w http.ResponseWriter, r *http.Request, p *page, d *credentialsData, status int) {
	list, err := c.svc.Tokens(r.Context(), p.caller)
	if err != nil {
		c.fail(w, r, err, "", p)
		return
	}
	d.Tokens, d.Scopes = list, service.Scopes
	if d.Chosen == nil {
		d.Chosen = map[string]bool{}
	}
	p.Title, p.Nav, p.Data = "API tokens", "tokens", d
	p.Notice = firstNonEmpty(p.Notice, notice(r))
	c.render(w, r, status, "tokens", p)
}

func (c *Console) createToken(w http.ResponseWriter, r *http.Request, p *page) {
	in := service.TokenInput{Name: strings.TrimSpace(r.PostFormValue("name")), Scopes: r.PostForm["scopes"]}
	d := &credentialsData{Name: in.Name, Chosen: map[string]bool{}}
	for _, s := range in.Scopes {
		d.Chosen[s] = true
	}
	secret, t, err := c.svc.CreateToken(r.Context(), p.caller, in)
	if err != nil {
		if !fieldErr(err, p) {
			c.fail(w, r, err, "", p)
			return
		}
		c.showTokens(w, r, p, d, http.StatusBadRequest)
		return
	}
	d = &credentialsData{NewSecret: secret, NewName: t.Name}
	c.showTokens(w, r, p, d, http.StatusCreated)
}

func (c *Console) revokeToken(w http.ResponseWriter, r *http.Request, p *page) {
	if err := c.svc.RevokeToken(r.Context(), p.caller, r.PathValue("id")); err != nil {
		c.fail(w, r, err, "", p)
		return
	}
	redirect(w, r, "/ui/tokens?done=revoked")
}

func (c *Console) publishersPage(w http.ResponseWriter, r *http.Request, p *page) {
	c.showPublishers(w, r, p, &credentialsData{}, http.StatusOK)
}

func (c *Console) showPublishers(w http.ResponseWriter, r *http.Request, p *page, d *credentialsData, status int) {
	list, err := c.svc.Publishers(r.Context(), p.caller)
	var cf *service.ConflictError
	switch {
	case errors.As(err, &cf):
		d.Conflict = cf.Reason
	case err != nil:
		c.fail(w, r, err, "", p)
		return
	}
	d.Publishers = list
	p.Title, p.Nav, p.Data = "Publishers", "publishers", d
	p.Notice = firstNonEmpty(p.Notice, notice(r))
	c.render(w, r, status, "publishers", p)
}

func (c *Console) createPublisher(w http.ResponseWriter, r *http.Request, p *page) {
	var sources []string
	for _, s := range strings.FieldsFunc(r.PostFormValue("sources"), func(r rune) bool { return r == ',' || r == ' ' || r == '\n' }) {
		sources = append(sources, strings.TrimSpace(s))
	}
	in := service.PublisherInput{Name: strings.TrimSpace(r.PostFormValue("name")), Sources: sources, Replies: r.PostFormValue("replies") == "true"}
	d := &credentialsData{Name: in.Name, Sources: r.PostFormValue("sources"), Replies: in.Replies}
	cred, pub, err := c.svc.CreatePublisher(r.Context(), p.caller, in)
	if err != nil {
		if !fieldErr(err, p) {
			c.fail(w, r, err, "", p)
			return
		}
		c.showPublishers(w, r, p, d, http.StatusBadRequest)
		return
	}
	c.showPublishers(w, r, p, &credentialsData{NewSecret: cred, NewName: pub.Name}, http.StatusCreated)
}

func (c *Console) revokePublisher(w http.ResponseWriter, r *http.Request, p *page) {
	if err := c.svc.RevokePublisher(r.Context(), p.caller, r.PathValue("id")); err != nil {
		c.fail(w, r, err, "", p)
		return
	}
	redirect(w, r, "/ui/publishers?done=revoked")
}

type clusterData struct {
	View *service.ClusterView
}

func (c *Console) clusterPage(w http.ResponseWriter, r *http.Request, p *page) {
	v, err := c.svc.ClusterMembers(r.Context(), p.caller)
	if err != nil {
		c.fail(w, r, err, "", p)
		return
	}
	p.Title, p.Nav, p.Data = "Cluster", "cluster", clusterData{View: v}
	c.render(w, r, http.StatusOK, "cluster", p)
}
