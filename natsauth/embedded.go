package natsauth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/seal"
)

// Files kept in <data-dir>/auth, each readable by its owner only.
const (
	Dir           = "auth"
	InternalFile  = "internal.token"  // quaycast's own connection; never shown, never logged
	PublisherFile = "publisher.token" // the local publisher: publish-only, every source
	KeyFile       = "secret.key"      // the secret key, when --secret-key is not given
)

// Embedded authorizes every client of the embedded server, loopback and in-process included.
// quaycast's own connection presents the internal token and gets the global account (where its
// streams live) with GatewayPermissions. A publisher presents its credential as a token (or as a
// user name without password) and gets an account of its own, which imports only the subjects
// its sources may publish and follow: no publisher ever shares a subject space — inboxes
// included — with quaycast or with another publisher.
type Embedded struct {
	internal string
	log      zerolog.Logger

	srv     atomic.Pointer[server.Server]
	loaded  chan struct{} // closed once the bucket's publishers are in
	once    sync.Once
	mu      sync.RWMutex
	pubs    map[string]*Publisher // verified records only
	revoked map[string]bool       // ids are never reused: a late put of a revoked one is ignored
}

var _ server.Authentication = (*Embedded)(nil)

// NewEmbedded returns the authenticator for an internal token.
func NewEmbedded(internal string, log zerolog.Logger) *Embedded {
	return &Embedded{internal: internal, log: log, pubs: map[string]*Publisher{}, revoked: map[string]bool{}, loaded: make(chan struct{})}
}

// Check is called by the server for every connecting client.
func (e *Embedded) Check(c server.ClientAuthentication) bool {
	o := c.GetOpts()
	presented := o.Token
	if presented == "" && o.Password == "" {
		presented = o.Username // nats CLI: --user <credential>
	}
	if presented == "" {
		return false
	}
	if subtle.ConstantTimeCompare([]byte(presented), []byte(e.internal)) == 1 {
		c.RegisterUser(&server.User{Username: "quaycast", Permissions: GatewayPermissions()})
		return true
	}
	id, secret, ok := kind.Parse(presented)
	if !ok {
		return false
	}
	// The server listens before the publishers are loaded from the bucket (they live in its
	// JetStream): a publisher reconnecting while the gateway starts waits for them rather than
	// being refused (nats.go gives up on a connection refused twice for authorization).
	select {
	case <-e.loaded:
	default: // only while starting: no timer per connection once loaded
		select {
		case <-e.loaded:
		case <-time.After(LoadWait):
		}
	}
	e.mu.RLock()
	p := e.pubs[id]
	e.mu.RUnlock()
	srv := e.srv.Load()
	if p == nil || srv == nil || !p.matches(secret) {
		return false
	}
	acc, err := srv.LookupAccount(id)
	if err != nil {
		return false
	}
	c.RegisterUser(&server.User{Username: id, Account: acc, Permissions: PublisherPermissions(p.Sources, p.Replies)})
	return true
}

// Attach exports, from quaycast's account, what publishers' accounts import. Call it once the
// server runs and before publishers are loaded.
func (e *Embedded) Attach(srv *server.Server) error {
	g := srv.GlobalAccount()
	if err := g.AddServiceExport(EventsExport, nil); err != nil {
		return fmt.Errorf("export %s: %w", EventsExport, err)
	}
	for _, s := range []string{RepliesExport, SysExport} {
		if err := g.AddStreamExport(s, nil); err != nil {
			return fmt.Errorf("export %s: %w", s, err)
		}
	}
	e.srv.Store(srv)
	return nil
}

// Run loads the publishers in the bucket into the server and follows changes until ctx ends: a
// new publisher can connect at once; a revoked one is refused from then on and its open
// connections are closed. loaded is closed once the current records are in.
func (e *Embedded) Run(ctx context.Context, pubs *Publishers, loaded chan<- struct{}) error {
	ready := make(chan struct{})
	go func() {
		select {
		case <-ready:
			e.once.Do(func() { close(e.loaded) })
			if loaded != nil {
				close(loaded)
			}
		case <-ctx.Done():
		}
	}()
	return pubs.watch(ctx, e.apply, ready)
}

// LoadWait bounds how long a connecting publisher waits for the publishers to be loaded at start;
// the server's authentication timeout must be longer (the gateway sets it to AuthTimeout).
const (
	LoadWait    = 4 * time.Second
	AuthTimeout = 5 * time.Second
)

func (e *Embedded) apply(id string, p *Publisher) {
	if p == nil {
		e.Revoke(id)
		return
	}
	if p.Forged {
		e.log.Error().Str("publisher_id", id).Msg("publisher record does not verify with the secret key: not loaded (written by something other than a gateway?)")
		e.Revoke(id)
		return
	}
	e.Add(p)
}

// Add lets a publisher connect, at once (the watch of the bucket does the same a moment later).
func (e *Embedded) Add(p *Publisher) {
	if err := e.account(p); err != nil {
		e.log.Error().Err(err).Str("publisher_id", p.ID).Msg("set up publisher account")
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.revoked[p.ID] {
		e.pubs[p.ID] = p
	}
}

// account makes the publisher's account, importing what its sources may publish and follow.
func (e *Embedded) account(p *Publisher) error {
	srv := e.srv.Load()
	if srv == nil {
		return errors.New("server not attached")
	}
	if _, err := srv.LookupAccount(p.ID); err == nil {
		return nil // made before: records do not change, they are revoked
	}
	acc, err := srv.RegisterAccount(p.ID)
	if err != nil {
		return fmt.Errorf("register account: %w", err)
	}
	g := srv.GlobalAccount()
	for _, s := range p.Sources {
		if err := acc.AddServiceImport(g, eventsOf(s), ""); err != nil {
			return fmt.Errorf("import %s: %w", eventsOf(s), err)
		}
		if p.Replies {
			if err := acc.AddStreamImport(g, repliesOf(s), ""); err != nil {
				return fmt.Errorf("import %s: %w", repliesOf(s), err)
			}
		}
	}
	if p.Replies {
		if err := acc.AddStreamImport(g, SysExport, ""); err != nil {
			return fmt.Errorf("import %s: %w", SysExport, err)
		}
	}
	return nil
}

// Revoke refuses a publisher from now on and closes its open connections.
func (e *Embedded) Revoke(id string) {
	e.mu.Lock()
	old := e.pubs[id]
	delete(e.pubs, id)
	e.revoked[id] = true
	e.mu.Unlock()
	if srv := e.srv.Load(); srv != nil {
		// A kicked connection's socket closes a moment later, and what it sent meanwhile would
		// still be processed: first send everything its account publishes nowhere.
		if acc, err := srv.LookupAccount(id); err == nil {
			if err := acc.AddMapping(">", "quaycast-revoked.>"); err != nil {
				e.log.Error().Err(err).Str("publisher_id", id).Msg("cut off a revoked publisher")
			}
		}
		if cz, err := srv.Connz(&server.ConnzOptions{Account: id, Limit: 1 << 20}); err == nil {
			for _, c := range cz.Conns {
				_ = srv.DisconnectClientByID(c.Cid)
			}
		}
	}
	if old != nil {
		e.log.Info().Str("publisher_id", id).Str("name", old.Name).Msg("publisher revoked")
	}
}

// Paths of the files under a data dir.
func Path(dataDir, file string) string { return filepath.Join(dataDir, Dir, file) }

// NewInternalToken is a random internal credential.
func NewInternalToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand documents it)
	return "qci_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// EnsureLocalPublisher creates, at first start, the local publisher credential (publish-only,
// every source, no replies) and writes it to path, for `quaycast publish` on the same machine.
// An existing file is left alone, also when an operator revoked the credential it holds.
func EnsureLocalPublisher(ctx context.Context, pubs *Publishers, path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	cred, _, err := pubs.Create(ctx, "local", []string{AllSources}, false)
	if err != nil {
		return fmt.Errorf("create the local publisher: %w", err)
	}
	if err := seal.WriteFile(path, cred+"\n"); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}
