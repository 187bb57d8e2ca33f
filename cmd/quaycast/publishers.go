package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/quaycast/quaycast/gateway"
	"github.com/quaycast/quaycast/natsauth"
)

type publishersCmd struct {
	Add    publishersAddCmd    `cmd:"" help:"Create a NATS credential for one upstream system; prints it once. Needs the admin token."`
	List   publishersListCmd   `cmd:"" help:"List publisher credentials (never their secrets)."`
	Revoke publishersRevokeCmd `cmd:"" help:"Revoke a publisher credential: refused at once, open connections closed."`
}

type publishersAddCmd struct {
	apiFlags
	Name    string   `name:"name" help:"Who holds it (default: the first source)."`
	Source  []string `name:"source" required:"" help:"Source it may publish (evt.<source>.>); repeatable, or * for all."`
	Replies bool     `name:"replies" help:"May also follow replies to its sources' events (quaycast.reply.<source>.>) and quaycast.sys.>."`
}

func (c *publishersAddCmd) Run(ctx context.Context) error {
	name := c.Name
	if name == "" {
		name = c.Source[0]
	}
	return c.print(ctx, "POST", "/v1/publishers", map[string]any{"name": name, "sources": c.Source, "replies": c.Replies})
}

type publishersListCmd struct{ apiFlags }

func (c *publishersListCmd) Run(ctx context.Context) error {
	return c.print(ctx, "GET", "/v1/publishers", nil)
}

type publishersRevokeCmd struct {
	apiFlags
	ID string `arg:"" help:"Publisher id (pub_...)."`
}

func (c *publishersRevokeCmd) Run(ctx context.Context) error {
	return c.remove(ctx, "/v1/publishers/"+url.PathEscape(c.ID), "revoked", c.ID)
}

// natsFlags are how a client command authenticates to NATS.
type natsFlags struct {
	NATSURL      string `name:"nats-url" env:"QUAYCAST_NATS_URL" default:"nats://${nats_listen}" help:"NATS to connect to."`
	NATSCreds    string `name:"nats-creds" env:"QUAYCAST_NATS_CREDS" help:"A .creds file (external NATS)." placeholder:"FILE"`
	NATSNkey     string `name:"nats-nkey" env:"QUAYCAST_NATS_NKEY" help:"A file holding an nkey seed." placeholder:"FILE"`
	NATSUser     string `name:"nats-user" env:"QUAYCAST_NATS_USER" help:"User name (with --nats-password)."`
	NATSPassword string `name:"nats-password" env:"QUAYCAST_NATS_PASSWORD" help:"Password of --nats-user." placeholder:"PASSWORD"`
	NATSToken    string `name:"nats-token" env:"QUAYCAST_NATS_TOKEN" help:"A token: a publisher credential (qcp_...) of the embedded NATS." placeholder:"TOKEN"`
	NATSCA       string `name:"nats-ca" env:"QUAYCAST_NATS_CA" help:"PEM CA to verify the NATS server's TLS certificate with." placeholder:"FILE"`
	DataDir      string `name:"data-dir" env:"QUAYCAST_DATA_DIR" default:"${data_dir}" help:"Without a credential, use the local publisher credential of the gateway on this machine (<data-dir>/auth/publisher.token)."`
}

// connect dials NATS with the given credential or, without one, the local publisher's —
// publish-only, never quaycast's own.
func (f natsFlags) connect(name string) (*nats.Conn, error) {
	access := gateway.NATSAccess{Creds: f.NATSCreds, Nkey: f.NATSNkey, User: f.NATSUser, Password: f.NATSPassword, Token: f.NATSToken, CA: f.NATSCA}
	if access.Creds == "" && access.Nkey == "" && access.User == "" && access.Token == "" {
		b, err := os.ReadFile(natsauth.Path(f.DataDir, natsauth.PublisherFile))
		switch {
		case err == nil:
			access.Token = strings.TrimSpace(string(b))
		case !errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("local publisher credential: %w", err)
		}
	}
	opts, err := gateway.ClientOptions(access)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(f.NATSURL, append(opts, nats.Name(name))...)
	if err != nil {
		if errors.Is(err, nats.ErrAuthorization) && access.Token == "" && access.Creds == "" && access.Nkey == "" && access.User == "" {
			return nil, fmt.Errorf("connect to %s: %w (give a credential with --nats-token or --nats-creds, or run where the gateway's --data-dir is)", f.NATSURL, err)
		}
		return nil, fmt.Errorf("connect to %s: %w", f.NATSURL, err)
	}
	return nc, nil
}

type natsConfigCmd struct {
	Source string `name:"source" default:"tos-rotterdam" help:"The source of the example publisher account."`
}

func (c *natsConfigCmd) Run() error {
	if err := natsauth.ValidatePublisher("x", []string{c.Source}); err != nil || c.Source == natsauth.AllSources {
		return fmt.Errorf("--source %q: must be 1-64 characters of [a-z0-9_-]", c.Source)
	}
	_, err := fmt.Print(natsauth.ServerConfig(c.Source))
	return err
}
