package gateway

import (
	"net/http"
	"time"

	"github.com/quaycast/quaycast/natsauth"
	"github.com/quaycast/quaycast/service"
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

func (a *api) createPublisher(w http.ResponseWriter, r *http.Request) {
	var in service.PublisherInput
	if !decodeJSON(w, r, &in) {
		return
	}
	cred, p, err := a.svc.CreatePublisher(r.Context(), callerOf(r), in)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	v := viewPublisher(p)
	v.Credential = cred
	writeJSON(w, http.StatusCreated, v)
}

func (a *api) listPublishers(w http.ResponseWriter, r *http.Request) {
	ps, err := a.svc.Publishers(r.Context(), callerOf(r))
	writeList(a, w, r, "publishers", ps, err, viewPublisher)
}

func (a *api) revokePublisher(w http.ResponseWriter, r *http.Request) {
	a.noContent(w, r, a.svc.RevokePublisher(r.Context(), callerOf(r), r.PathValue("id")))
}
