package gateway

import (
	"net/http"
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

func (a *api) createPublisher(w http.ResponseWriter, r *http.Request) {
	if cred, p, ok := callCreate(a, w, r, a.svc.CreatePublisher); ok {
		v := viewPublisher(p)
		v.Credential = cred
		writeJSON(w, http.StatusCreated, v)
	}
}
