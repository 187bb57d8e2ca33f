package gateway_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/config"
	"github.com/quaycast/quaycast/gateway"
	"github.com/quaycast/quaycast/internal/fielderr"
	"github.com/quaycast/quaycast/internal/testhttp"
	"github.com/quaycast/quaycast/internal/testwait"
)

// freePort is a loopback address no one listens on now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// runGateway runs a gateway for cfg in the background; its error arrives on the channel.
func runGateway(t *testing.T, ctx context.Context, cfg config.Config) <-chan error {
	t.Helper()
	g := gateway.New(cfg, zerolog.New(zerolog.NewTestWriter(t)))
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	return done
}

func waitRun(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(60 * time.Second):
		t.Fatal("Run did not return within 60s")
		return nil
	}
}

// wantPortFree fails unless addr can be listened on again: Run closed its listener.
func wantPortFree(t *testing.T, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("address %s is still taken after Run returned: %v", addr, err)
	}
	ln.Close()
}

// The API's port is taken first, so a busy one fails before NATS starts; a start that then fails
// in a NATS step — here, setting up JetStream on a NATS that never answers, until the start is
// given up — leaves the port free when Run returns. So does the profiles' listener, which serves
// while the start is stuck.
func TestStartFailingAfterListenFreesThePort(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.Listen = freePort(t)
	cfg.PprofListen = freePort(t)
	cfg.NATSURL = "nats://" + freePort(t) // nothing there: JetStream setup retries until ctx ends
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := runGateway(t, ctx, cfg)

	// The listener is open (connections wait in its backlog) while the NATS step is stuck.
	testwait.For(t, 20*time.Second, "the API's listener open", func() bool {
		c, err := net.DialTimeout("tcp", cfg.Listen, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	testwait.For(t, 20*time.Second, "profiles served during the start", func() bool {
		code, _, err := testhttp.Get("http://" + cfg.PprofListen + "/debug/pprof/")
		return err == nil && code == 200
	})
	select {
	case err := <-done:
		t.Fatalf("Run returned before NATS answered: %v", err)
	default:
	}
	cancel()
	if err := waitRun(t, done); err == nil || !strings.Contains(err.Error(), "set up JetStream") {
		t.Errorf("Run = %v, want the JetStream set-up error", err)
	}
	wantPortFree(t, cfg.Listen)
	wantPortFree(t, cfg.PprofListen)
}

// An embedded NATS that cannot start (its port taken) fails Run naming --nats-listen, after the
// API's listener was opened: that is closed again.
func TestEmbeddedNATSFailingFreesThePort(t *testing.T) {
	t.Parallel()
	cfg := runOnBusyPort(t, "nats-listen", func(c *config.Config, addr string) { c.NATSListen = addr })

	// The data dir was unlocked too: a gateway starts on it (NATS on a free port) and stops.
	cfg.NATSListen = "127.0.0.1:0"
	g := startGateway(t, cfg)
	g.Stop(t)
	wantPortFree(t, cfg.Listen)
}

// runOnBusyPort runs a gateway with the address of flag (set by set) on a port in use: Run must
// fail naming the flag, and close the API's listener it opened before. It returns the config.
func runOnBusyPort(t *testing.T, flag string, set func(c *config.Config, addr string)) config.Config {
	t.Helper()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg := testConfig(t)
	cfg.Listen = freePort(t)
	set(&cfg, busy.Addr().String())
	err = waitRun(t, runGateway(t, context.Background(), cfg))
	var fe *fielderr.Error
	if !errors.As(err, &fe) || fe.Field != flag {
		t.Fatalf("Run = %v, want an error naming --%s", err, flag)
	}
	wantPortFree(t, cfg.Listen)
	return cfg
}
