package console

import (
	"cmp"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/quaycast/quaycast/rollup"
	"github.com/quaycast/quaycast/service"
)

// liveData is the live page: the busiest endpoints' hour, and the latest deliveries, which the
// script then follows.
type liveData struct {
	Endpoints  []liveEndpoint
	Recent     []*attemptView
	Cursor     uint64
	CanLog     bool
	NoFigures  bool
	MoreActive int // endpoints with traffic not drawn
}

type liveEndpoint struct {
	ID     string
	Charts *charts
}

// liveCharts is how many endpoints the live page draws: the busiest of the hour.
const liveCharts = 6

func (c *Console) livePage(w http.ResponseWriter, r *http.Request, p *page) {
	d := liveData{}
	p.Title, p.Nav, p.Data = "Live", "live", &d
	if p.Can(string(service.OpViewFigures)) {
		recs, err := c.svc.HourFigures(r.Context(), p.caller)
		if err != nil {
			c.log.Warn().Err(err).Msg("console: read figures")
		}
		d.NoFigures = recs == nil && err == nil
		totals := rollup.Totals(recs)
		ids := make([]string, 0, len(totals))
		for id := range totals {
			ids = append(ids, id)
		}
		slices.SortFunc(ids, func(a, b string) int {
			return cmp.Or(cmp.Compare(totals[b].Attempts(), totals[a].Attempts()), cmp.Compare(a, b))
		})
		if len(ids) > liveCharts {
			d.MoreActive, ids = len(ids)-liveCharts, ids[:liveCharts]
		}
		now := time.Now()
		for _, id := range ids {
			d.Endpoints = append(d.Endpoints, liveEndpoint{ID: id, Charts: endpointCharts(rollup.PerMinute(recs, id, now))})
		}
	}
	if p.Can(string(service.OpListDeliveries)) {
		d.CanLog = true
		recs, cursor, err := c.svc.RecentDeliveries(r.Context(), p.caller, 0, 20)
		if err != nil {
			c.fail(w, r, err, "", p)
			return
		}
		d.Cursor = cursor
		for i := len(recs) - 1; i >= 0; i-- { // newest first
			if a, err := readAttempt(recs[i]); err == nil {
				d.Recent = append(d.Recent, a)
			}
		}
	}
	c.render(w, r, http.StatusOK, "live", p)
}

// liveEvent is one delivery as the live stream sends it to the page's script.
type liveEvent struct {
	At       string `json:"at"`
	Endpoint string `json:"endpoint"`
	Type     string `json:"type"`
	Entity   string `json:"entity"`
	Attempt  int    `json:"attempt"`
	Status   string `json:"status"`
	Duration string `json:"duration"`
	Outcome  string `json:"outcome"`
}

// liveStream follows the delivery log across the cluster as server-sent events, from the cursor
// the page was drawn at (?after=, or the stream's Last-Event-ID on a reconnect). It outlives the
// API's write deadline, which it lifts, and ends when the client leaves or the server stops.
func (c *Console) liveStream(w http.ResponseWriter, r *http.Request, p *page) {
	if err := c.svc.Check(p.caller, service.OpListDeliveries); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	after, _ := strconv.ParseUint(cmp.Or(r.Header.Get("Last-Event-ID"), r.URL.Query().Get("after")), 10, 64)
	rc := http.NewResponseController(w)
	if err := rc.SetWriteDeadline(time.Time{}); err != nil {
		c.log.Warn().Err(err).Msg("console: live stream keeps the write deadline")
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("retry: 3000\n\n"))
	_ = rc.Flush()
	tick := time.NewTicker(c.o.Live)
	defer tick.Stop()
	idle := 0
	for {
		select {
		case <-r.Context().Done():
			return
		case <-c.closing:
			return
		case <-tick.C:
		}
		if after == 0 { // an empty log when the page was drawn: follow from its end
			if _, cur, err := c.svc.RecentDeliveries(r.Context(), p.caller, 0, 0); err == nil {
				after = cur
			}
			if after == 0 {
				continue
			}
		}
		recs, next, err := c.svc.RecentDeliveries(r.Context(), p.caller, after, 100)
		if err != nil {
			if r.Context().Err() == nil {
				c.log.Warn().Err(err).Msg("console: live stream")
			}
			continue
		}
		for _, raw := range recs {
			a, err := readAttempt(raw)
			if err != nil {
				continue
			}
			b, _ := json.Marshal(liveEvent{At: a.At.UTC().Format("15:04:05"), Endpoint: a.EndpointID, Type: a.Type, Entity: a.Entity,
				Attempt: a.Attempt, Status: a.Status(), Duration: ms(a.DurationMS), Outcome: a.Outcome})
			_, _ = w.Write([]byte("event: delivery\n"))
			_, _ = w.Write([]byte("data: " + string(b) + "\n\n"))
		}
		if len(recs) > 0 {
			after = next
			_, _ = w.Write([]byte("id: " + strconv.FormatUint(after, 10) + "\n\n"))
			idle = 0
		} else if idle++; idle*int(c.o.Live/time.Millisecond) >= 15000 {
			_, _ = w.Write([]byte(": keep-alive\n\n")) // proxies close quiet connections
			idle = 0
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}
