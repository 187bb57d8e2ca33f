package natstest

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Start runs a JetStream server on 127.0.0.1 with a random port and a store in t.TempDir(),
// and shuts it down when the test ends.
func Start(t testing.TB) *server.Server {
	t.Helper()
	return start(t, t.TempDir(), -1, nil)
}

// StartWith is Start with the server options changed by configure first (users, permissions);
// Restart applies it again.
func StartWith(t testing.TB, configure func(*server.Options)) *server.Server {
	t.Helper()
	return start(t, t.TempDir(), -1, configure)
}

// Restart shuts s down (if it still runs) and starts a new server on the same store dir and
// port, to prove durability across a broker restart.
func Restart(t testing.TB, s *server.Server) *server.Server {
	t.Helper()
	v, ok := started.Load(s)
	if !ok {
		t.Fatalf("natstest: Restart of a server that Start did not make")
	}
	o := v.(origin)
	Stop(s)
	return start(t, o.dir, o.port, o.configure)
}

// Stop shuts s down and waits for it, to simulate a broker outage.
func Stop(s *server.Server) {
	s.Shutdown()
	s.WaitForShutdown()
}

// Connect dials s and closes the connection when the test ends.
func Connect(t testing.TB, s *server.Server) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatalf("connect to nats: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// ConnectJetStream is Connect with the connection's JetStream context.
func ConnectJetStream(t testing.TB, s *server.Server) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc := Connect(t, s)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return nc, js
}

// origin is what Restart needs of a server that may already be stopped.
type origin struct {
	dir       string
	port      int
	configure func(*server.Options)
}

var started sync.Map // *server.Server -> origin

func start(t testing.TB, dir string, port int, configure func(*server.Options)) *server.Server {
	t.Helper()
	opts := &server.Options{
		ServerName: "natstest",
		Host:       "127.0.0.1",
		Port:       port,
		JetStream:  true,
		StoreDir:   dir,
		NoLog:      true,
		NoSigs:     true,
	}
	if configure != nil {
		configure(opts)
	}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("new nats server: %v", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		t.Fatalf("nats server not ready within 10s")
	}
	started.Store(s, origin{dir: dir, port: s.Addr().(*net.TCPAddr).Port, configure: configure})
	t.Cleanup(func() {
		Stop(s)
		started.Delete(s)
	})
	return s
}
