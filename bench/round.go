package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// gatewayRound registers eps, measures the gateway idle, sends the round's traffic through it,
// and, if cleanup, deletes the endpoints again.
func (r *runner) gatewayRound(ctx context.Context, name, letter string, eps []*endpoint, cleanup bool) (Round, error) {
	rd := Round{Name: name, Pipeline: "gateway"}
	before := 0 // endpoints the gateway delivers to already; a cluster is judged by ids instead
	if !r.clustered() {
		if before = r.workers(ctx); before < 0 {
			if err := r.waitReady(ctx); err != nil {
				return rd, err
			}
			before = r.workers(ctx)
		}
	}
	var err error
	if rd.Registration, err = r.registerAll(ctx, name, eps, before); err != nil {
		return rd, err
	}
	if rd.Idle, err = r.measureIdle(ctx, name); err != nil {
		return rd, err
	}
	err = r.runTraffic(ctx, &rd, letter, eps)
	if cleanup && ctx.Err() == nil {
		r.bar.phase(name+": deleting endpoints", 0)
		ids := endpointIDs(eps)
		r.deleteEndpoints(ctx, eps)
		if err == nil {
			if r.clustered() {
				err = r.waitOwned(ctx, ids, false)
			} else {
				err = r.waitWorkers(ctx, before)
			}
		}
	}
	return rd, err
}

// joinRound adds gateways to the cluster until n run, waits until the endpoints registered by
// the first round are spread over them, then sends the round's traffic.
func (r *runner) joinRound(ctx context.Context, name, letter string, n int) (Round, error) {
	rd := Round{Name: name, Pipeline: "gateway"}
	r.bar.phase(fmt.Sprintf("%s: starting gateways", name), 0)
	start := time.Now()
	if err := r.addGateways(ctx, n); err != nil {
		return rd, err
	}
	r.bar.phase(name+": waiting for the endpoints to spread over the gateways", int64(len(r.rec.eps)))
	if err := r.waitOwned(ctx, endpointIDs(r.rec.eps), true); err != nil {
		return rd, err
	}
	join := time.Since(start).Seconds()
	var err error
	if rd.Idle, err = r.measureIdle(ctx, name); err != nil {
		return rd, err
	}
	err = r.runTraffic(ctx, &rd, letter, r.rec.eps)
	if rd.Cluster != nil {
		rd.Cluster.JoinSeconds = join
	}
	return rd, err
}

// runTraffic takes the down endpoints' receivers down, and sends the round's traffic.
func (r *runner) runTraffic(ctx context.Context, rd *Round, letter string, eps []*endpoint) error {
	downs := downEndpoints(eps)
	for _, ep := range downs {
		ep.srv.close()
	}
	return r.traffic(ctx, rd, letter, eps, func(ctx context.Context) error {
		for _, ep := range downs {
			if err := ep.srv.up(ctx); err != nil {
				return err
			}
		}
		return nil
	})
}

// registerAll registers eps and waits until the gateway delivers to them as well as to the
// before endpoints it had.
func (r *runner) registerAll(ctx context.Context, name string, eps []*endpoint, before int) (*Registration, error) {
	r.bar.phase(name+": registering endpoints", int64(len(eps)))
	start := time.Now()
	if err := r.register(ctx, eps); err != nil {
		return nil, err
	}
	reg := &Registration{Endpoints: len(eps), Seconds: time.Since(start).Seconds()}
	reg.PerEndpointMs = reg.Seconds * 1000 / float64(len(eps))
	if r.clustered() {
		r.bar.phase(name+": waiting for the gateways to own every endpoint", int64(len(eps)))
		if err := r.waitOwned(ctx, endpointIDs(eps), true); err != nil {
			return nil, err
		}
	} else {
		r.bar.phase(name+": waiting for the gateway to deliver to every endpoint", int64(before+len(eps)))
		if err := r.waitWorkers(ctx, before+len(eps)); err != nil {
			return nil, err
		}
	}
	reg.ReadySeconds = time.Since(start).Seconds()
	return reg, nil
}

// measureIdle leaves the gateway idle for the scenario's idle time and measures its CPU time and
// memory (of several gateways: added up; and of the NATS nodes of the harness's own); nil without
// an idle time or when the gateway is not a process of ours.
func (r *runner) measureIdle(ctx context.Context, name string) (*Idle, error) {
	idle := time.Duration(r.sc.Idle)
	if idle <= 0 {
		return nil, nil
	}
	r.bar.phase(fmt.Sprintf("%s: idle for %s", name, idle), 0)
	ps0, ok := r.gatewayStats()
	ns0, nok := sumStats(r.nodes)
	select {
	case <-time.After(idle):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	ps1, ok1 := r.gatewayStats()
	ns1, nok1 := sumStats(r.nodes)
	if !ok || !ok1 {
		return nil, nil
	}
	id := &Idle{Seconds: idle.Seconds(), CPUPercent: 100 * (ps1.CPU - ps0.CPU).Seconds() / idle.Seconds(), RSSMiB: mib(ps1.RSS), PeakRSSMiB: mib(ps1.PeakRSS)}
	if nok && nok1 {
		id.NATSCPUPercent, id.NATSRSSMiB = 100*(ns1.CPU-ns0.CPU).Seconds()/idle.Seconds(), mib(ns1.RSS)
	}
	return id, nil
}

func downEndpoints(eps []*endpoint) []*endpoint {
	var out []*endpoint
	for _, ep := range eps {
		if ep.behaviour == down {
			out = append(out, ep)
		}
	}
	return out
}

// baselineRound sends the round's traffic through the minimal pipeline. Its result is named:
// closing the baseline, deferred, adds notes to it.
func (r *runner) baselineRound(ctx context.Context, name, letter string, eps []*endpoint) (rd Round, err error) {
	rd = Round{Name: name, Pipeline: "baseline"}
	r.bar.phase(name+": creating consumers", int64(len(eps)))
	info, err := r.stream.Info(ctx)
	if err != nil {
		return rd, fmt.Errorf("events stream: %w", err)
	}
	b := newBaseline(r.subJS, r.stream, r.run, r.o.BaselineClient)
	if b.fast != nil {
		rd.Notes = append(rd.Notes, "the baseline POSTed with fasthttp's client (--baseline-client fasthttp)")
	}
	defer func() {
		c, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if err := b.close(c); err != nil {
			rd.Notes = append(rd.Notes, err.Error())
		}
		for e, n := range b.errs {
			rd.Notes = append(rd.Notes, fmt.Sprintf("consume error ×%d: %s", n, e))
		}
	}()
	rctx, cancelDeliveries := context.WithCancel(ctx)
	defer cancelDeliveries()
	start := time.Now()
	later, err := r.addBaselineEndpoints(ctx, rctx, b, eps, info.State.LastSeq+1)
	if err != nil {
		return rd, err
	}
	reg := &Registration{Endpoints: len(eps), Seconds: time.Since(start).Seconds()}
	reg.PerEndpointMs, reg.ReadySeconds = reg.Seconds*1000/float64(len(eps)), reg.Seconds
	rd.Registration = reg
	err = r.traffic(ctx, &rd, letter, eps, func(context.Context) error {
		for _, be := range later {
			if err := be.start(rctx); err != nil {
				return err
			}
		}
		return nil
	})
	return rd, err
}

// addBaselineEndpoints creates a baseline consumer per endpoint from startSeq on and starts it,
// delivering on deliveries; those of down endpoints are returned unstarted, to consume only once
// publishing is done (the drain).
func (r *runner) addBaselineEndpoints(ctx, deliveries context.Context, b *baseline, eps []*endpoint, startSeq uint64) ([]*baselineEndpoint, error) {
	parts := min(baselineInFlight, r.sc.Entities)
	var (
		mu    sync.Mutex
		later []*baselineEndpoint
		n     atomic.Int64
	)
	err := parallel(ctx, eps, func(ctx context.Context, ep *endpoint) error {
		be, err := b.add(ctx, ep, startSeq, parts)
		if err != nil {
			return err
		}
		if ep.behaviour == down {
			mu.Lock()
			later = append(later, be)
			mu.Unlock()
			return nil
		}
		return be.start(deliveries)
	}, func() { r.bar.set(n.Add(1)) })
	return later, err
}
