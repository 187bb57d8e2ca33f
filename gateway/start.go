package gateway

import (
	"context"
	"fmt"
)

// Start runs the gateway in the background, as Run does, and returns once it is ready: for the
// harness and tests, which drive a gateway inside their own process. It fails with Run's error
// if Run ends first, and stops the gateway again if ctx ends first. ctx bounds only the start:
// the gateway runs until stop is called, which shuts it down in order and returns Run's error.
func (g *Gateway) Start(ctx context.Context) (stop func() error, err error) {
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- g.Run(rctx) }()
	stop = func() error {
		cancel()
		return <-done
	}
	select {
	case <-g.Ready():
		return stop, nil
	case err := <-done:
		cancel()
		return nil, fmt.Errorf("gateway: %w", err)
	case <-ctx.Done():
		_ = stop()
		return nil, fmt.Errorf("gateway not ready: %w", ctx.Err())
	}
}
