package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quaycast/quaycast/gateway"
)

// workers reads how many endpoints the gateway delivers to, from /readyz; -1 while it is not
// ready.
func (r *runner) workers(ctx context.Context) int { return r.workersOf(ctx, r.tgt) }

// waitWorkers waits until the gateway delivers to n endpoints.
func (r *runner) waitWorkers(ctx context.Context, n int) error {
	var w int
	return r.poll(ctx, func() bool {
		w = r.workers(ctx)
		r.bar.set(int64(max(w, 0)))
		return w == n
	}, func() string { return fmt.Sprintf("gateway delivering to %d endpoints, want %d", w, n) })
}

// waitReady waits until the gateway answers /readyz.
func (r *runner) waitReady(ctx context.Context) error {
	return r.poll(ctx, func() bool { return r.workers(ctx) >= 0 }, func() string { return "gateway not ready" })
}

// poll asks done every 100 ms until it says yes, a process of the run exits or ctx ends; then the
// error starts with what.
func (r *runner) poll(ctx context.Context, done func() bool, what func() string) error {
	for !done() {
		if err := r.gone(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what(), ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// parallel runs f for every endpoint, 8 at a time, and returns the first error.
func parallel(ctx context.Context, eps []*endpoint, f func(context.Context, *endpoint) error, done func()) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan *endpoint)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for ep := range work {
				if err := f(ctx, ep); err != nil {
					cancel(err)
					continue
				}
				done()
			}
		})
	}
	for _, ep := range eps {
		select {
		case work <- ep:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(work)
	wg.Wait()
	return context.Cause(ctx)
}

// register creates the endpoints through the API.
func (r *runner) register(ctx context.Context, eps []*endpoint) error {
	if err := r.registerTenants(ctx, eps); err != nil {
		return err
	}
	var n atomic.Int64
	return parallel(ctx, eps, func(ctx context.Context, ep *endpoint) error {
		var out struct{ ID, Secret string }
		body := map[string]any{"url": ep.url, "event_types": ep.selectors, "description": "quaycast bench " + r.run + " " + ep.name}
		if ep.tenant != "" {
			body["tenant"] = ep.tenant
		}
		if r.sc.Condition != "" {
			body["condition"] = r.sc.Condition
		}
		if err := r.api.Do(ctx, "POST", "/v1/endpoints", body, &out); err != nil {
			var ae *gateway.APIError
			if errors.As(err, &ae) && ae.Field == "url" && r.tgt.kind == TargetRemote {
				return fmt.Errorf("register %s: %w (start the gateway with --allow-target 127.0.0.1: the harness's receivers are on loopback)", ep.name, err)
			}
			return fmt.Errorf("register %s: %w", ep.name, err)
		}
		ep.id, ep.secret = out.ID, out.Secret
		return nil
	}, func() { r.bar.set(n.Add(1)) })
}

// registerTenants creates the tenants of the endpoints (one that exists is taken as it is: a
// later round, or a gateway that ran before).
func (r *runner) registerTenants(ctx context.Context, eps []*endpoint) error {
	seen := map[string]bool{}
	var owners []*endpoint // one endpoint per tenant
	for _, ep := range eps {
		if ep.tenant != "" && !seen[ep.tenant] {
			seen[ep.tenant] = true
			owners = append(owners, ep)
		}
	}
	return parallel(ctx, owners, func(ctx context.Context, ep *endpoint) error {
		err := r.api.Do(ctx, "POST", "/v1/tenants", map[string]any{"id": ep.tenant, "name": "quaycast bench " + ep.tenant}, nil)
		var ae *gateway.APIError
		if err != nil && !(errors.As(err, &ae) && ae.Status == http.StatusConflict) {
			return fmt.Errorf("register tenant %s: %w", ep.tenant, err)
		}
		return nil
	}, func() {})
}

// deleteEndpoints removes what register created; errors are left to the report's notes.
func (r *runner) deleteEndpoints(ctx context.Context, eps []*endpoint) {
	_ = parallel(ctx, eps, func(ctx context.Context, ep *endpoint) error {
		if ep.id == "" {
			return nil
		}
		var ae *gateway.APIError
		if err := r.api.Do(ctx, "DELETE", "/v1/endpoints/"+ep.id, nil, nil); err != nil && !(errors.As(err, &ae) && ae.Status == 404) {
			return err
		}
		ep.id = ""
		return nil
	}, func() {})
}
