package config

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"

	"github.com/quaycast/quaycast/internal/fielderr"
)

// Default must be what the CLI gives with no flags: the tags' defaults are Default's values
// written out by Vars and parsed back by kong.
func TestDefaultMatchesFlagDefaults(t *testing.T) {
	var cli struct {
		Config `embed:""`
	}
	p, err := kong.New(&cli, kong.Vars(Vars()), kong.Exit(func(int) { t.Fatal("kong exited") }))
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range os.Environ() { // the flag defaults, not this shell's environment
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "QUAYCAST_") {
			t.Setenv(name, "") // restored after the test
			os.Unsetenv(name)
		}
	}
	if _, err := p.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cli.Config, Default()) {
		t.Errorf("flag defaults\n%+v\ndiffer from Default()\n%+v", cli.Config, Default())
	}
	if err := Default().Validate(); err != nil {
		t.Errorf("Default() does not validate: %v", err)
	}
}

// A default written into a tag would be a second copy of it, free to differ from Default: every
// `default` tag is the variable of its own flag.
func TestTagsTakeDefaultsFromVars(t *testing.T) {
	vars := Vars()
	typ := reflect.TypeFor[Config]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		name := f.Tag.Get("name")
		def, ok := f.Tag.Lookup("default")
		if !ok {
			if !reflect.ValueOf(Default()).Field(i).IsZero() {
				t.Errorf("--%s: Default() sets %s, but the flag has no default tag", name, f.Name)
			}
			continue
		}
		if want := "${" + strings.ReplaceAll(name, "-", "_") + "}"; def != want {
			t.Errorf("--%s: tag default:%q, want default:%q (the value comes from package defaults)", name, def, want)
		}
		if _, ok := vars[strings.ReplaceAll(name, "-", "_")]; !ok {
			t.Errorf("--%s: no variable in Vars()", name)
		}
	}
}

func TestFlagText(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"hours", 168 * time.Hour, "168h"},
		{"one hour", time.Hour, "1h"},
		{"minutes", 2 * time.Minute, "2m"},
		{"a minute reads in seconds", time.Minute, "60s"},
		{"seconds", 90 * time.Second, "90s"},
		{"below a second", 1500 * time.Millisecond, "1.5s"},
		{"zero duration", time.Duration(0), "0s"},
		{"schedule", []time.Duration{5 * time.Second, time.Hour}, "5s,1h"},
		{"KiB", ByteSize(64 << 10), "64KiB"},
		{"MiB", ByteSize(32 << 20), "32MiB"},
		{"not a whole MiB", ByteSize(1536 << 10), "1536KiB"},
		{"bytes", ByteSize(1000), "1000"},
		{"zero size", ByteSize(0), "0"},
		{"ratio", 0.5, "0.5"},
		{"count", uint32(20), "20"},
		{"bool", false, "false"},
		{"list", []string{"a", "b"}, "a,b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := flagText(tc.in); got != tc.want {
				t.Errorf("flagText(%v) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestValidateNamesTheFlag(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		field  string
	}{
		{"listen", func(c *Config) { c.Listen = "nonsense" }, "listen"},
		{"nats listen", func(c *Config) { c.NATSListen = "127.0.0.1:99999" }, "nats-listen"},
		{"nats url", func(c *Config) { c.NATSURL = "::" }, "nats-url"},
		{"no data dir", func(c *Config) { c.DataDir = "" }, "data-dir"},
		{"max age", func(c *Config) { c.StreamMaxAge = 0 }, "stream-max-age"},
		{"dedupe window beyond max age", func(c *Config) { c.DuplicateWindow = 200 * time.Hour }, "duplicate-window"},
		{"in flight", func(c *Config) { c.MaxInFlight = 0 }, "max-in-flight"},
		{"ack pending below in flight", func(c *Config) { c.MaxAckPending = 10 }, "max-ack-pending"},
		{"timeout beyond ack wait", func(c *Config) { c.DeliveryTimeout = 2 * time.Minute }, "delivery-timeout"},
		{"empty schedule", func(c *Config) { c.RetrySchedule = nil }, "retry-schedule"},
		{"negative wait", func(c *Config) { c.RetrySchedule = []time.Duration{-time.Second} }, "retry-schedule"},
		{"breaker ratio", func(c *Config) { c.BreakerRatio = 1.5 }, "breaker-ratio"},
		{"secret key", func(c *Config) { c.SecretKey = "c2hvcnQ=" }, "secret-key"},
		{"log max age", func(c *Config) { c.LogMaxAge = 0 }, "log-max-age"},
		{"open API beyond loopback", func(c *Config) { c.Listen = "0.0.0.0:8080" }, "listen"},
		{"short admin token", func(c *Config) { c.AdminToken = "short" }, "admin-token"},
		{"allow target", func(c *Config) { c.AllowTargets = []string{"nope"} }, "allow-target"},
		{"marks flush", func(c *Config) { c.MarksFlush = 0 }, "marks-flush"},
		{"external NATS with access control and no key", func(c *Config) {
			c.NATSURL, c.AdminToken = "nats://127.0.0.1:4222", "an-admin-token-of-length"
		}, "secret-key"},
		{"tls cert without key", func(c *Config) { c.TLSCert = "cert.pem" }, "tls-key"},
		{"nats tls key without cert", func(c *Config) { c.NATSTLSKey = "key.pem" }, "nats-tls-cert"},
		{"nats tls with an external NATS", func(c *Config) {
			c.NATSURL, c.NATSTLSCert, c.NATSTLSKey = "nats://127.0.0.1:4222", "c.pem", "k.pem"
		}, "nats-tls-cert"},
		{"external credentials without --nats-url", func(c *Config) { c.NATSCreds = "x.creds" }, "nats-creds"},
		{"two ways to authenticate", func(c *Config) {
			c.NATSURL, c.NATSToken, c.NATSCreds = "nats://127.0.0.1:4222", "t", "x.creds"
		}, "nats-creds"},
		{"user without password", func(c *Config) { c.NATSURL, c.NATSUser = "nats://127.0.0.1:4222", "quaycast" }, "nats-password"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.change(&c)
			var fe *fielderr.Error
			if err := c.Validate(); !errors.As(err, &fe) || fe.Field != tc.field || !fe.Flag {
				t.Errorf("Validate() = %v, want a flag error for --%s", err, tc.field)
			}
		})
	}
}

func TestListenBeyondLoopbackWithToken(t *testing.T) {
	c := Default()
	c.Listen, c.AdminToken = "0.0.0.0:8080", "0123456789abcdef0123"
	if err := c.Validate(); err != nil {
		t.Errorf("with an admin token: %v", err)
	}
}

func TestByteSize(t *testing.T) {
	tests := []struct {
		in      string
		want    ByteSize
		wantErr bool
	}{
		{"0", 0, false}, {"1024", 1024, false}, {"512MiB", 512 << 20, false}, {"20GiB", 20 << 30, false},
		{"1.5GB", 1_500_000_000, false}, {"10 KiB", 10 << 10, false}, {"-1", 0, true}, {"lots", 0, true},
	}
	for _, tc := range tests {
		var b ByteSize
		err := b.UnmarshalText([]byte(tc.in))
		if (err != nil) != tc.wantErr || !tc.wantErr && b != tc.want {
			t.Errorf("%q: %d, %v; want %d, error %v", tc.in, b, err, tc.want, tc.wantErr)
		}
	}
}

// --pprof-listen serves profiles without access control: loopback only, and a refusal names the
// flag.
func TestValidatePprofListen(t *testing.T) {
	tests := []struct {
		name    string
		addr    string
		wantErr bool
	}{
		{"off", "", false},
		{"IPv4 loopback", "127.0.0.1:6060", false},
		{"IPv6 loopback", "[::1]:6060", false},
		{"localhost", "localhost:6060", false},
		{"a free port", "127.0.0.1:0", false},
		{"every interface, no host", ":6060", true},
		{"every IPv4 interface", "0.0.0.0:6060", true},
		{"every IPv6 interface", "[::]:6060", true},
		{"a private address", "10.0.0.5:6060", true},
		{"a host name", "example.com:6060", true},
		{"no port", "127.0.0.1", true},
		{"port out of range", "127.0.0.1:70000", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			c.PprofListen = tc.addr
			checkFlagValue(t, "pprof-listen", tc.addr, c.Validate(), tc.wantErr)
		})
	}
}

// checkFlagValue checks Validate's answer err to one value of --flag: accepted, or, wantErr,
// refused with an error that names the flag (its field, marked a flag's, and "--flag: " first).
func checkFlagValue(t *testing.T, flag, value string, err error, wantErr bool) {
	t.Helper()
	if !wantErr {
		if err != nil {
			t.Errorf("--%s %q: %v, want accepted", flag, value, err)
		}
		return
	}
	var fe *fielderr.Error
	if !errors.As(err, &fe) || fe.Field != flag || !fe.Flag || !strings.HasPrefix(err.Error(), "--"+flag+": ") {
		t.Errorf("--%s %q: Validate() = %v, want an error naming --%s", flag, value, err, flag)
	}
}

// --otlp-endpoint is an OTLP/HTTP collector's URL; anything else is refused naming the flag, and
// never with a password from the URL in the message.
func TestValidateOTLPEndpoint(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		wantErr bool
	}{
		{"off", "", false},
		{"http", "http://127.0.0.1:4318", false},
		{"https with a path", "https://collector.example/otlp", false},
		{"the traces path", "http://collector:4318/v1/traces", false},
		{"no scheme", "collector:4318", true},
		{"host and port only", "localhost:4318", true},
		{"gRPC scheme", "grpc://collector:4317", true},
		{"no host", "http://", true},
		{"not a URL", "http://[::1", true},
		{"a query", "http://collector:4318/?x=1", true},
		{"credentials", "http://u:hunter2@collector:4318", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			c.OTLPEndpoint = tc.url
			err := c.Validate()
			checkFlagValue(t, "otlp-endpoint", tc.url, err, tc.wantErr)
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error shows the URL's password: %v", err)
			}
		})
	}
}

func TestOTLPTracesURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http://collector:4318", "http://collector:4318/v1/traces"},
		{"http://collector:4318/", "http://collector:4318/v1/traces"},
		{"https://collector.example/otlp", "https://collector.example/otlp/v1/traces"},
		{"http://collector:4318/v1/traces", "http://collector:4318/v1/traces"},
	}
	for _, tc := range tests {
		if got := OTLPTracesURL(tc.in); got != tc.want {
			t.Errorf("OTLPTracesURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// The portal's frame-ancestors take sites and 'self', never every site (nor every site of a
// scheme or a top-level domain) or anything that could end the CSP directive.
func TestValidFrameAncestors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		list    string
		wantErr bool
	}{
		{"'none'", false},
		{"https://app.example.com", false},
		{"https://app.example.com http://localhost:3000 'self'", false},
		{"https://*.example.com", false},
		{"", true},
		{"*", true},
		{"https:", true},
		{"http:", true},
		{"wss:", true},
		{"HTTPS:", true},
		{"data:", true},
		{"https://app.example.com https:", true},
		{"https://*.com", true},
		{"https://*", true},
		{"'none' 'self'", true},
		{"https://app.example.com;", true},
		{"https://app.example.com/path", true},
		{"app.example.com", true},
		{"https://a.*.example.com", true},
		{"'unsafe-inline'", true},
	} {
		if err := ValidFrameAncestors(tc.list); (err != nil) != tc.wantErr {
			t.Errorf("ValidFrameAncestors(%q) = %v, want error %v", tc.list, err, tc.wantErr)
		}
	}
}
