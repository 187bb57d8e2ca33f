package gateway_test

import (
	"errors"
	"testing"

	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/gateway"
	"github.com/quaycast/quaycast/gateway/gatewaytest"
	"github.com/quaycast/quaycast/internal/fielderr"
)

// A gateway that cannot run says why at Start.
func TestStartFailsWithRunsError(t *testing.T) {
	t.Parallel()
	cfg := gatewaytest.Config(t)
	cfg.MarksFlush = 0
	stop, err := gateway.New(cfg, zerolog.New(zerolog.NewTestWriter(t))).Start(t.Context())
	var fe *fielderr.Error
	if !errors.As(err, &fe) || fe.Field != "marks-flush" || stop != nil {
		t.Errorf("Start: %v (stop %v), want the error naming --marks-flush", err, stop != nil)
	}
}

// A started gateway answers its API until stopped, and its stop returns Run's nil error.
func TestStartRunsUntilStopped(t *testing.T) {
	t.Parallel()
	g := gateway.New(gatewaytest.Config(t), zerolog.New(zerolog.NewTestWriter(t)))
	stop, err := g.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	c := gateway.NewClient(g.APIURL())
	if err := c.Do(t.Context(), "GET", "/healthz", nil, nil); err != nil {
		t.Errorf("healthz after Start: %v", err)
	}
	if err := stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	if err := c.Do(t.Context(), "GET", "/healthz", nil, nil); err == nil {
		t.Error("healthz answered after stop")
	}
}
