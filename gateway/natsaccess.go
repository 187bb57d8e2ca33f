package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"github.com/nats-io/nats.go/jetstream"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/internal/fielderr"
	"github.com/quaycast/quaycast/natsauth"
	"github.com/quaycast/quaycast/seal"
	"github.com/quaycast/quaycast/tokens"
)

// secretKey is the key that seals endpoint secrets and binds tokens and publisher records: the
// configured one, or — with a data dir — one generated at first start beside the internal
// credentials. With an external NATS and no key, records stay in the clear (config refuses that
// once access control is on).
func (g *Gateway) secretKey() (*seal.Key, error) {
	raw, err := g.cfg.SecretKeyBytes()
	if err != nil {
		return nil, fielderr.Flag("secret-key", err.Error())
	}
	if raw == nil && g.cfg.NATSURL == "" {
		path := natsauth.Path(g.cfg.DataDir, natsauth.KeyFile)
		var created bool
		if raw, created, err = seal.LoadOrCreate(path); err != nil {
			return nil, err
		}
		if created {
			g.log.Info().Str("file", path).Msg("generated the secret key that seals endpoint secrets: back it up with the data dir")
		}
	}
	if raw == nil {
		g.log.Warn().Msg("no --secret-key: endpoint secrets are stored unencrypted in the registry bucket")
	}
	return seal.New(raw)
}

// checkKey refuses a key that opens none of the sealed secrets in the registry, and then seals
// what an earlier release stored in the clear and binds its API tokens, in place.
func (g *Gateway) checkKey(ctx context.Context, js jetstream.JetStream, reg *consumer.Registry, toks *tokens.Store) error {
	if err := reg.CheckKey(ctx); err != nil {
		return fielderr.Flag("secret-key", err.Error())
	}
	sealed, err := reg.SealAll(ctx, js)
	if err != nil {
		return err
	}
	bound, err := toks.BindAll(ctx)
	if err != nil {
		return err
	}
	if sealed+bound > 0 {
		g.log.Info().Int("endpoints_sealed", sealed).Int("tokens_bound", bound).Msg("sealed secrets and bound tokens stored by an earlier release")
	}
	return nil
}

// externalOptions are the connection options the operator's NATS needs.
func (g *Gateway) externalOptions() ([]nats.Option, error) {
	return ClientOptions(NATSAccess{
		Creds: g.cfg.NATSCreds, Nkey: g.cfg.NATSNkey, User: g.cfg.NATSUser, Password: g.cfg.NATSPassword,
		Token: g.cfg.NATSToken, CA: g.cfg.NATSCA, Cert: g.cfg.NATSClientCert, Key: g.cfg.NATSClientKey,
	})
}

// NATSAccess is how a client authenticates to NATS: at most one of Creds, Nkey (a seed file),
// User and Password, or Token; CA to verify the server's TLS certificate, Cert and Key to present
// one.
type NATSAccess struct {
	Creds, Nkey, User, Password, Token string
	CA, Cert, Key                      string
}

// ClientOptions turns access settings into nats.go options; files that cannot be read are errors
// naming them.
func ClientOptions(a NATSAccess) ([]nats.Option, error) {
	var opts []nats.Option
	switch {
	case a.Creds != "":
		if _, err := os.Stat(a.Creds); err != nil {
			return nil, fmt.Errorf("nats creds: %w", err)
		}
		opts = append(opts, nats.UserCredentials(a.Creds))
	case a.Nkey != "":
		o, err := nats.NkeyOptionFromSeed(a.Nkey)
		if err != nil {
			return nil, fmt.Errorf("nats nkey: %w", err)
		}
		opts = append(opts, o)
	case a.User != "":
		opts = append(opts, nats.UserInfo(a.User, a.Password))
	case a.Token != "":
		opts = append(opts, nats.Token(a.Token))
	}
	if a.CA != "" {
		if _, err := os.Stat(a.CA); err != nil {
			return nil, fmt.Errorf("nats ca: %w", err)
		}
		opts = append(opts, nats.RootCAs(a.CA))
	}
	if a.Cert != "" {
		opts = append(opts, nats.ClientCert(a.Cert, a.Key))
	}
	return opts, nil
}

// startEmbedded runs the in-process NATS server with JetStream storing under the data dir, with
// authorization always on (authn decides every connection, loopback and in-process included).
// stop shuts it down, waits for it, and then unlocks the data dir.
func (g *Gateway) startEmbedded(authn *natsauth.Embedded) (srv *server.Server, stop func(), err error) {
	host, portStr, err := net.SplitHostPort(g.cfg.NATSListen)
	if err != nil {
		return nil, nil, fmt.Errorf("nats-listen %q: %w", g.cfg.NATSListen, err)
	}
	port, _ := strconv.Atoi(portStr)
	if port == 0 {
		port = server.RANDOM_PORT
	}
	dir, err := filepath.Abs(g.cfg.DataDir)
	if err != nil {
		return nil, nil, fmt.Errorf("data dir: %w", err)
	}
	lock, err := lockDataDir(dir)
	if err != nil {
		return nil, nil, err
	}
	var running *server.Server
	var mark *runMark
	shutdown := func() { // the lock is held until the server has stopped
		if running == nil {
			lock.Close()
			return
		}
		// nats-server stops the durable consumers one after another, each waiting for its state
		// flusher in 10 ms steps: ~10 ms an endpoint (BenchmarkNATSShutdownConsumers), over a
		// minute and a half at 10,000. Past --nats-stop-timeout the process is let exit without
		// it: the gateway's own state is written by now, the server writes each stored message as
		// it acknowledges it and a consumer's position within 100 ms, and atomically; so it is a
		// crash only for the server's indexes, which it rebuilds at the next start.
		consumers := 0
		if info, err := running.Jsz(nil); err == nil {
			consumers = info.Consumers
		}
		start := time.Now()
		g.log.Info().Int("consumers", consumers).Msg("stopping the embedded NATS server")
		stopped := make(chan struct{})
		go func() {
			running.Shutdown()
			running.WaitForShutdown()
			mark.stopped()
			lock.Close()
			close(stopped)
		}()
		var limit <-chan time.Time
		if d := g.cfg.NATSStopTimeout; d > 0 {
			limit = time.After(d)
		}
		select {
		case <-stopped:
			g.log.Info().Int("consumers", consumers).Dur("took", time.Since(start)).Msg("embedded NATS server stopped")
		case <-limit:
			mark.cutShort()
			g.log.Warn().Int("consumers", consumers).Dur("nats_stop_timeout", g.cfg.NATSStopTimeout).
				Msg("embedded NATS server still stopping: not waited for; what it acknowledged is on disk, and it rebuilds its indexes at the next start (raise --nats-stop-timeout, or 0, to wait)")
		}
	}
	defer func() { // named results are nil on the error paths: use the locals
		if err != nil {
			shutdown()
		}
	}()
	g.lastRun(dir)
	opts := &server.Options{
		ServerName:                 "quaycast",
		Host:                       host,
		Port:                       port,
		JetStream:                  true,
		StoreDir:                   dir,
		NoSigs:                     true, // signals are the gateway's: it stops the server last
		NoLog:                      true,
		CustomClientAuthentication: authn,
		AuthTimeout:                natsauth.AuthTimeout.Seconds(),
	}
	if g.cfg.NATSTLSCert != "" {
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: g.cfg.NATSTLSCert, KeyFile: g.cfg.NATSTLSKey, Timeout: 2})
		if err != nil {
			return nil, nil, fielderr.Flag("nats-tls-cert", err.Error())
		}
		opts.TLS, opts.TLSConfig, opts.TLSTimeout = true, tc, 2
	} else if !loopbackHost(host) {
		g.log.Warn().Str("nats_listen", g.cfg.NATSListen).Msg("NATS listens beyond loopback without TLS: publishers' credentials cross the network in clear; set --nats-tls-cert and --nats-tls-key")
	}
	if running, err = server.NewServer(opts); err != nil {
		return nil, nil, fmt.Errorf("embedded NATS: %w", err)
	}
	fatal := make(chan string, 4)
	running.SetLoggerV2(natsLogger{log: g.log.With().Str("component", "nats").Logger(), fatal: fatal}, false, false, false)
	running.Start() // returns once it listens, or failed to
	if err := embeddedReady(running, fatal, net.JoinHostPort(host, portStr), 30*time.Second); err != nil {
		return nil, nil, err
	}
	mark = g.markRun(dir)
	if err := authn.Attach(running); err != nil {
		return nil, nil, err
	}
	return running, shutdown, nil
}

// lockDataDir locks the data dir against a second gateway, which would run a second JetStream
// server on the same store: it fails at once, naming --data-dir. A lock still held by a gateway
// of this process that is stopping is waited for, briefly.
func lockDataDir(dir string) (*os.File, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return f, nil
		case !errors.Is(err, syscall.EWOULDBLOCK):
			f.Close()
			return nil, fmt.Errorf("lock data dir %s: %w", dir, err)
		case time.Now().After(deadline):
			f.Close()
			return nil, fielderr.Flag("data-dir", dir+" is in use by another quaycast (two gateways must not share a JetStream store): stop it, or give this one a data dir of its own")
		}
	}
}

// embeddedReady waits until the started server accepts clients, and fails at once when it
// reported a fatal error instead: its port taken (a second quaycast on the same machine), or
// JetStream not starting.
func embeddedReady(srv *server.Server, fatal <-chan string, addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		select {
		case msg := <-fatal:
			if srv.Addr() == nil { // no listener: if the address is unusable, say so with the flag
				ln, err := net.Listen("tcp", addr) // the server only logged its error: take it again, typed
				if err != nil {
					return listenError("nats-listen", err)
				}
				ln.Close()
			}
			return fmt.Errorf("embedded NATS: %s", msg)
		default:
		}
		if srv.ReadyForConnections(100 * time.Millisecond) {
			select {
			case msg := <-fatal: // JetStream failed after the listener came up
				return fmt.Errorf("embedded NATS: %s", msg)
			default:
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("embedded NATS on %s not ready within %s", addr, within)
		}
	}
}

// listenError is the error for an address that cannot be listened on, naming the flag that set
// it (the API's --listen uses it too).
func listenError(flag string, err error) error {
	reason := err.Error()
	if errors.Is(err, syscall.EADDRINUSE) {
		reason += " (another process — a second quaycast? — uses this port: stop it, or choose another address with --" + flag + "; two gateways need a --data-dir each)"
	}
	return fielderr.Flag(flag, reason)
}

func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// serverTLS is the HTTP API's TLS configuration, or nil without --tls-cert.
func (g *Gateway) serverTLS() (*tls.Config, error) {
	if g.cfg.TLSCert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(g.cfg.TLSCert, g.cfg.TLSKey)
	if err != nil {
		return nil, fielderr.Flag("tls-cert", err.Error())
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// loadPublishers opens the publisher credentials, loads them into the embedded server — following
// changes until ctx ends — and creates the local publisher credential at first start.
func (g *Gateway) loadPublishers(ctx context.Context, bg *sync.WaitGroup, js jetstream.JetStream, authn *natsauth.Embedded, key *seal.Key) (*natsauth.Publishers, error) {
	pubs, err := natsauth.NewPublishers(ctx, js, 1, key)
	if err != nil {
		return nil, err
	}
	loaded := make(chan struct{})
	bg.Go(func() {
		ready := loaded
		for ctx.Err() == nil {
			if err := authn.Run(ctx, pubs, ready); err != nil {
				g.log.Warn().Err(err).Msg("follow publisher credentials; again in 1s")
				ready = nil
				select {
				case <-time.After(time.Second):
				case <-ctx.Done():
				}
			}
		}
	})
	select {
	case <-loaded:
	case <-time.After(30 * time.Second):
		return nil, errors.New("load publisher credentials: not done within 30s")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if err := natsauth.EnsureLocalPublisher(ctx, pubs, natsauth.Path(g.cfg.DataDir, natsauth.PublisherFile)); err != nil {
		return nil, err
	}
	return pubs, nil
}
