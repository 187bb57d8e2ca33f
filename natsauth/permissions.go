package natsauth

import (
	"fmt"
	"strings"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/quaycast/quaycast/attempts"
	"github.com/quaycast/quaycast/cluster"
	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/eventtypes"
	"github.com/quaycast/quaycast/portal"
	"github.com/quaycast/quaycast/rollup"
	"github.com/quaycast/quaycast/subjects"
	"github.com/quaycast/quaycast/tenants"
	"github.com/quaycast/quaycast/tokens"
)

// What quaycast exports from its account to publishers' accounts: publishing events (a service,
// so that JetStream's acknowledgement finds its way back), and following receivers' replies and
// quaycast's own notices (streams).
const (
	EventsExport  = subjects.StreamSubjects // evt.>
	RepliesExport = attempts.ReplyPrefix + ">"
	SysExport     = "quaycast.sys.>"
)

// streams and buckets are everything quaycast creates or reads in JetStream, named by the
// packages that keep them: its own user's permissions are made from these lists, embedded or
// external, so a stream or bucket any package adds must be listed here (TestInventory checks them
// against a server set up by every package). The order is the accounts block's, unchanged since
// the records left package consumer. The old marks bucket is read once, to move it into
// consumer.MarksStream.
var (
	streams = []string{
		consumer.EventsStream, consumer.InvalidStream, consumer.DeadStream,
		attempts.LogStream, attempts.RepliesStream,
		consumer.MarksStream, consumer.ParkStream, rollup.Stream,
	}
	buckets = []string{consumer.EndpointsBucket, tokens.Bucket, consumer.LegacyMarksBucket, PublishersBucket, eventtypes.Bucket,
		cluster.MembersBucket, cluster.OwnersBucket, tenants.Bucket, portal.Bucket}
)

// streamNames are the streams, KV buckets' included.
func streamNames() []string {
	names := append([]string(nil), streams...)
	for _, b := range buckets {
		names = append(names, "KV_"+b)
	}
	return names
}

// GatewayPermissions are the least quaycast's own NATS user needs: the JetStream API of its own
// streams and buckets only, its data subjects, and replies to its requests.
func GatewayPermissions() *server.Permissions {
	pub := []string{"$JS.API.INFO", "$JS.API.STREAM.NAMES", "$JS.API.STREAM.LIST"}
	for _, s := range streamNames() {
		pub = append(pub,
			"$JS.API.STREAM.*."+s,          // info, create, update, purge
			"$JS.API.STREAM.MSG.*."+s,      // get and delete one message
			"$JS.API.DIRECT.GET."+s,        // direct get
			"$JS.API.DIRECT.GET."+s+".>",   // direct get by subject (KV)
			"$JS.API.CONSUMER.*."+s,        // consumer names and list
			"$JS.API.CONSUMER.*."+s+".>",   // create, info, delete, pause, reset
			"$JS.API.CONSUMER.*.*."+s+".>", // MSG.NEXT (pull), DURABLE.CREATE
			"$JS.ACK."+s+".>",              // acknowledgements
			"$JS.FC."+s+".>",               // flow control of ordered consumers (watches)
		)
	}
	for _, b := range buckets {
		pub = append(pub, "$KV."+b+".>")
	}
	pub = append(pub, subjects.StreamSubjects, subjects.ReplayStreamSubjects, subjects.TenantStreamSubjects, "quaycast.>")
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: pub},
		Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
	}
}

// PublisherPermissions are a publisher's: publish the events of its sources, read the answers to
// its own requests, and — when granted — follow the replies to its sources' events and
// quaycast's notices. Nothing else: no KV, no stream or consumer API, no replay.
func PublisherPermissions(sources []string, replies bool) *server.Permissions {
	var pub, sub []string
	for _, s := range sources {
		pub = append(pub, eventsOf(s))
	}
	sub = append(sub, "_INBOX.>")
	if replies {
		for _, s := range sources {
			sub = append(sub, repliesOf(s))
		}
		sub = append(sub, SysExport)
	}
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: pub},
		Subscribe: &server.SubjectPermission{Allow: sub},
	}
}

// AllSources stands for every source in a publisher's list.
const AllSources = "*"

func eventsOf(source string) string {
	if source == AllSources {
		return EventsExport
	}
	return "evt." + source + ".>"
}

func repliesOf(source string) string {
	if source == AllSources {
		return RepliesExport
	}
	return attempts.ReplyPrefix + source + ".>"
}

// ServerConfig is the accounts block an operator adds to an external nats-server's configuration:
// an account for quaycast, with JetStream and the least permissions its user needs, exporting
// events, replies and notices; and one account per upstream system, shown for one source. The
// passwords are environment variables that nats-server resolves when it starts.
func ServerConfig(exampleSource string) string {
	var b strings.Builder
	acct := strings.ToUpper(strings.ReplaceAll(exampleSource, "-", "_"))
	pw := func(name string) string { return "$" + name + "_NATS_PASSWORD" }
	list := func(items []string) string {
		var l strings.Builder
		for _, it := range items {
			fmt.Fprintf(&l, "            %q\n", it)
		}
		return l.String()
	}
	// user is an account's one user, with what it may publish and subscribe to.
	user := func(name, password string, p *server.Permissions) string {
		return fmt.Sprintf(`    users: [
      {
        user: %s
        password: %s
        permissions: {
          publish: { allow: [
%s          ] }
          subscribe: { allow: [
%s          ] }
        }
      }
    ]
`, name, password, list(p.Publish.Allow), list(p.Subscribe.Allow))
	}
	fmt.Fprintf(&b, `# quaycast's NATS accounts (generated by "quaycast nats-config"; the passwords come from the
# environment of nats-server). Put this beside your jetstream {} block.
accounts {
  QUAYCAST {
    jetstream: enabled
%s    exports: [
      { service: %q }
      { stream: %q }
      { stream: %q }
    ]
  }
  # One account per upstream system. This one publishes the events of source %q only, and may
  # follow the replies to them and quaycast's notices.
  %s {
%s    imports: [
      { service: { account: QUAYCAST, subject: %q } }
      { stream: { account: QUAYCAST, subject: %q } }
      { stream: { account: QUAYCAST, subject: %q } }
    ]
  }
}
`, user("quaycast", pw("QUAYCAST"), GatewayPermissions()),
		EventsExport, RepliesExport, SysExport,
		exampleSource, acct, user(exampleSource, pw(acct), PublisherPermissions([]string{exampleSource}, true)),
		eventsOf(exampleSource), repliesOf(exampleSource), SysExport)
	return b.String()
}
