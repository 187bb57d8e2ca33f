package gateway

import (
	"context"
	"sync"

	"github.com/quaycast/quaycast/cluster"
	"github.com/quaycast/quaycast/consumer"
)

// routerRun starts and stops the tenant router (consumer.Router) as the cluster tells this
// gateway to own or give up consumer.RouterID; a gateway alone runs it all along.
type routerRun struct {
	router *consumer.Router

	mu     sync.Mutex
	base   context.Context // serve's delivery context: set before the cluster runs
	cancel context.CancelFunc
	done   chan struct{}
}

// setBase gives the context the router runs under.
func (r *routerRun) setBase(ctx context.Context) {
	r.mu.Lock()
	r.base = ctx
	r.mu.Unlock()
}

// start runs the router unless it runs.
func (r *routerRun) start() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cancel != nil || r.base == nil {
		return
	}
	ctx, cancel := context.WithCancel(r.base)
	done := make(chan struct{})
	r.cancel, r.done = cancel, done
	go func() {
		defer close(done)
		_ = r.router.Run(ctx) // it logs its own end
	}()
}

// stop ends the router; the channel closes once it has stored its position.
func (r *routerRun) stop() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cancel == nil {
		return closedChan
	}
	r.cancel()
	done := r.done
	r.cancel, r.done = nil, nil
	return done
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// routedEngine is the delivery manager as the cluster sees it, with the router as a job: owned by
// one gateway at a time, handed over like an endpoint.
type routedEngine struct {
	*consumer.Manager
	router *routerRun
	sender *Sender
}

var (
	_ cluster.Engine = routedEngine{}
	_ cluster.Jobs   = routedEngine{}
)

// Jobs is the router: one gateway of the cluster runs it.
func (e routedEngine) Jobs() []string { return []string{consumer.RouterID} }

func (e routedEngine) Own(ctx context.Context, id string) error {
	if id == consumer.RouterID {
		e.router.start()
		return nil
	}
	return e.Manager.Own(ctx, id)
}

func (e routedEngine) Disown(id string) <-chan struct{} {
	if id == consumer.RouterID {
		return e.router.stop()
	}
	return e.Manager.Disown(id)
}

func (e routedEngine) Fence() {
	done := e.router.stop()
	e.sender.Abort() // the POSTs out end now, as their contexts do in Fence
	e.Manager.Fence()
	<-done
}
