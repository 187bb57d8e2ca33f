package console

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/internal/fielderr"
	"github.com/quaycast/quaycast/service"
)

// redeliverData is the redeliver form: an endpoint's events again, from a sequence or a time.
type redeliverData struct {
	ID, URL                          string
	SinceSeq, Since, Entities, Limit string // as typed
	Result                           *consumer.Redelivered
}

func (c *Console) redeliverPage(w http.ResponseWriter, r *http.Request, p *page) {
	ep, ok := c.endpointFor(w, r, p, service.OpRedeliver)
	if !ok {
		return
	}
	p.Title, p.Nav, p.Data = "Redeliver to "+ep.ID, "endpoints", &redeliverData{ID: ep.ID, URL: ep.URL}
	c.render(w, r, http.StatusOK, "redeliver", p)
}

func (c *Console) redeliver(w http.ResponseWriter, r *http.Request, p *page) {
	ep, ok := c.endpointFor(w, r, p, service.OpRedeliver)
	if !ok {
		return
	}
	d := &redeliverData{ID: ep.ID, URL: ep.URL, SinceSeq: strings.TrimSpace(r.PostFormValue("since_seq")),
		Since: r.PostFormValue("since"), Entities: r.PostFormValue("entities"), Limit: strings.TrimSpace(r.PostFormValue("limit"))}
	p.Title, p.Nav, p.Data = "Redeliver to "+ep.ID, "endpoints", d
	in := service.RedeliverInput{Since: utcField(d.Since)}
	for _, e := range strings.Split(d.Entities, ",") {
		if e = strings.TrimSpace(e); e != "" {
			in.Entities = append(in.Entities, e)
		}
	}
	var err error
	if d.SinceSeq != "" {
		if in.SinceSeq, err = strconv.ParseUint(d.SinceSeq, 10, 64); err != nil || in.SinceSeq == 0 {
			c.fail(w, r, &fielderr.Error{Field: "since_seq", Reason: "must be a stream sequence, from 1"}, "redeliver", p)
			return
		}
	}
	if d.Limit != "" {
		if in.Limit, err = strconv.Atoi(d.Limit); err != nil || in.Limit < 1 {
			c.fail(w, r, &fielderr.Error{Field: "limit", Reason: "must be a number from 1"}, "redeliver", p)
			return
		}
	}
	done, err := c.svc.Redeliver(r.Context(), p.caller, ep.ID, in)
	if err != nil {
		c.fail(w, r, err, "redeliver", p)
		return
	}
	d.Result = &done
	c.render(w, r, http.StatusOK, "redeliver", p)
}
