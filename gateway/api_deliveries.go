package gateway

import (
	"net/http"

	"github.com/quaycast/quaycast/service"
)

// listEndpointDeliveries is the delivery log of one endpoint.
func (a *api) listEndpointDeliveries(w http.ResponseWriter, r *http.Request) {
	page, err := a.svc.EndpointDeliveries(r.Context(), callerOf(r), r.PathValue("id"), deliveryFilter(r))
	a.writeDeliveries(w, r, page, err)
}

// listEventDeliveries is the delivery log of one event, across endpoints.
func (a *api) listEventDeliveries(w http.ResponseWriter, r *http.Request) {
	page, err := a.svc.EventDeliveries(r.Context(), callerOf(r), r.PathValue("id"), deliveryFilter(r))
	a.writeDeliveries(w, r, page, err)
}

// deliveryFilter reads the delivery log's filters from the query: status (delivered, failed, or
// an HTTP status code), since and until (RFC 3339), limit (1-1000, default 100), and after (the
// next_cursor of the previous page).
func deliveryFilter(r *http.Request) service.DeliveryFilter {
	q := r.URL.Query()
	return service.DeliveryFilter{
		Page:   service.Page{Limit: q.Get("limit"), After: q.Get("after")},
		Status: q.Get("status"), Since: q.Get("since"), Until: q.Get("until"),
	}
}

// writeDeliveries answers a page of the delivery log, oldest first.
func (a *api) writeDeliveries(w http.ResponseWriter, r *http.Request, page *service.DeliveryPage, err error) {
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writePage(w, "deliveries", page.Deliveries, page.NextCursor)
}

// testSend delivers a test event to an endpoint now, through the normal signing path, and answers
// with the attempt: status, latency, response excerpt. {"type": ...} picks the event type
// (default: the first the endpoint subscribes to), {"data": {...}} its data.
func (a *api) testSend(w http.ResponseWriter, r *http.Request) {
	if attempt, ok := callWithBody(a, w, r, bodyOptional, a.svc.TestSend); ok {
		writeJSON(w, http.StatusOK, attempt)
	}
}
