package gateway

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/quaycast/quaycast/natsauth"
)

// publisherView is a publisher as listed: never its secret nor its hash.
type publisherView struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Sources    []string  `json:"sources"`
	Replies    bool      `json:"replies"`
	CreatedAt  time.Time `json:"created_at"`
	Error      string    `json:"error,omitempty"`      // the record does not verify: refused by NATS
	Credential string    `json:"credential,omitempty"` // only in the answer that creates it
}

func viewPublisher(p *natsauth.Publisher) publisherView {
	v := publisherView{ID: p.ID, Name: p.Name, Sources: p.Sources, Replies: p.Replies, CreatedAt: p.CreatedAt}
	if p.Forged {
		v.Error = "the record does not verify with the secret key: NATS refuses it; revoke it"
	}
	return v
}

// external answers 409 when the NATS is the operator's: quaycast mints no credentials there.
func (a *api) external(w http.ResponseWriter) bool {
	if a.pubs != nil {
		return false
	}
	writeError(w, http.StatusConflict, "", "publishers are managed in the operator's NATS (--nats-url): give each upstream system a user there (see the README, Securing NATS)")
	return true
}

func (a *api) createPublisher(w http.ResponseWriter, r *http.Request) {
	if a.external(w) {
		return
	}
	var in struct {
		Name    string   `json:"name"`
		Sources []string `json:"sources"`
		Replies bool     `json:"replies"`
	}
	if !decodeJSON(w, r, &in) {
		return
	}
	if err := natsauth.ValidatePublisher(in.Name, in.Sources); err != nil {
		a.fail(w, r, err)
		return
	}
	cred, p, err := a.pubs.Create(r.Context(), in.Name, in.Sources, in.Replies)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.authn.Add(p) // usable at once; the watch of the bucket does the same
	v := viewPublisher(p)
	v.Credential = cred
	writeJSON(w, http.StatusCreated, v)
}

func (a *api) listPublishers(w http.ResponseWriter, r *http.Request) {
	if a.external(w) {
		return
	}
	ps, err := a.pubs.List(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]publisherView, len(ps))
	for i, p := range ps {
		out[i] = viewPublisher(p)
	}
	writeJSON(w, http.StatusOK, map[string]any{"publishers": out})
}

func (a *api) revokePublisher(w http.ResponseWriter, r *http.Request) {
	if a.external(w) {
		return
	}
	id := r.PathValue("id")
	hexPart, ok := strings.CutPrefix(id, "pub_")
	if !ok || len(hexPart) != 20 || strings.Trim(hexPart, "0123456789abcdef") != "" {
		writeError(w, http.StatusNotFound, "id", "no publisher with this id")
		return
	}
	if err := a.pubs.Revoke(r.Context(), id); err != nil {
		if errors.Is(err, natsauth.ErrNotFound) {
			writeError(w, http.StatusNotFound, "id", "no publisher with this id")
			return
		}
		a.fail(w, r, err)
		return
	}
	a.authn.Revoke(id) // at once; the watch of the bucket does the same
	w.WriteHeader(http.StatusNoContent)
}
