package config

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/quaycast/quaycast/internal/defaults"
	"github.com/quaycast/quaycast/internal/fielderr"
)

// Config is everything `quaycast serve` needs. The zero value is not useful; Default gives
// the documented defaults, and the CLI the same ones: each `default` tag names its value in Vars.
type Config struct {
	DataDir    string `name:"data-dir" env:"QUAYCAST_DATA_DIR" default:"${data_dir}" help:"Folder of the embedded NATS server's JetStream store."`
	NATSListen string `name:"nats-listen" env:"QUAYCAST_NATS_LISTEN" default:"${nats_listen}" help:"Address the embedded NATS server listens on for upstream publishers."`
	NATSURL    string `name:"nats-url" env:"QUAYCAST_NATS_URL" help:"Connect to this external NATS (comma-separated URLs) instead of running an embedded server."`
	Listen     string `name:"listen" env:"QUAYCAST_LISTEN" default:"${listen}" help:"Address of the HTTP API."`

	PprofListen string `name:"pprof-listen" env:"QUAYCAST_PPROF_LISTEN" default:"${pprof_listen}" help:"Serve Go's net/http/pprof profiles on this loopback address (e.g. 127.0.0.1:6060), on a listener of its own, never the API's; empty: off." placeholder:"ADDR"`

	OTLPEndpoint string `name:"otlp-endpoint" env:"QUAYCAST_OTLP_ENDPOINT" help:"Export delivery spans over OTLP/HTTP to this collector (e.g. http://collector:4318; /v1/traces is added unless the path ends with it); empty: no export, trace context is still passed on." placeholder:"URL"`

	Replicas int           `name:"replicas" env:"QUAYCAST_REPLICAS" default:"${replicas}" help:"Copies of every stream and bucket quaycast keeps in JetStream: 3 on a three-node NATS cluster. Raising it on existing data replicates it in place."`
	Deliver  bool          `name:"deliver" env:"QUAYCAST_DELIVER" default:"${deliver}" negatable:"" help:"Deliver webhooks. --no-deliver (or --deliver=false) serves the API only."`
	LeaseTTL time.Duration `name:"lease-ttl" env:"QUAYCAST_LEASE_TTL" default:"${lease_ttl}" help:"With --nats-url: a gateway that stops renewing its membership for this long is gone, and others take its endpoints over. It stops posting after 3/4 of it. Keep it above a NATS leader election (up to about 10s)."`
	Name     string        `name:"name" env:"QUAYCAST_NAME" help:"This gateway's name among the cluster's members (default: host name and API port)."`

	TLSCert     string `name:"tls-cert" env:"QUAYCAST_TLS_CERT" help:"PEM certificate (chain) of the HTTP API: serve HTTPS." placeholder:"FILE"`
	TLSKey      string `name:"tls-key" env:"QUAYCAST_TLS_KEY" help:"PEM private key of --tls-cert." placeholder:"FILE"`
	NATSTLSCert string `name:"nats-tls-cert" env:"QUAYCAST_NATS_TLS_CERT" help:"PEM certificate of the embedded NATS listener: publishers must connect with TLS." placeholder:"FILE"`
	NATSTLSKey  string `name:"nats-tls-key" env:"QUAYCAST_NATS_TLS_KEY" help:"PEM private key of --nats-tls-cert." placeholder:"FILE"`

	NATSCreds      string `name:"nats-creds" env:"QUAYCAST_NATS_CREDS" help:"External NATS: a .creds file (user JWT and nkey seed)." placeholder:"FILE"`
	NATSNkey       string `name:"nats-nkey" env:"QUAYCAST_NATS_NKEY" help:"External NATS: a file holding an nkey seed (SU...)." placeholder:"FILE"`
	NATSUser       string `name:"nats-user" env:"QUAYCAST_NATS_USER" help:"External NATS: user name (with --nats-password)."`
	NATSPassword   string `name:"nats-password" env:"QUAYCAST_NATS_PASSWORD" help:"External NATS: password of --nats-user. Prefer the environment variable." placeholder:"PASSWORD"`
	NATSToken      string `name:"nats-token" env:"QUAYCAST_NATS_TOKEN" help:"External NATS: an authorization token. Prefer the environment variable." placeholder:"TOKEN"`
	NATSCA         string `name:"nats-ca" env:"QUAYCAST_NATS_CA" help:"PEM CA certificate(s) to verify the external NATS servers with (TLS)." placeholder:"FILE"`
	NATSClientCert string `name:"nats-client-cert" env:"QUAYCAST_NATS_CLIENT_CERT" help:"External NATS: PEM client certificate for TLS client authentication." placeholder:"FILE"`
	NATSClientKey  string `name:"nats-client-key" env:"QUAYCAST_NATS_CLIENT_KEY" help:"External NATS: PEM private key of --nats-client-cert." placeholder:"FILE"`

	StreamMaxAge    time.Duration `name:"stream-max-age" env:"QUAYCAST_STREAM_MAX_AGE" default:"${stream_max_age}" help:"How long the events stream keeps events (the retry horizon). An event still undelivered to an endpoint min(this/10, 1h) before it leaves is dead-lettered."`
	StreamMaxBytes  ByteSize      `name:"stream-max-bytes" env:"QUAYCAST_STREAM_MAX_BYTES" default:"${stream_max_bytes}" help:"Size cap of the events stream, e.g. 20GiB; when full, publishes are refused (0 = no cap)."`
	DuplicateWindow time.Duration `name:"duplicate-window" env:"QUAYCAST_DUPLICATE_WINDOW" default:"${duplicate_window}" help:"Publishes with an event id seen within this window are dropped as duplicates."`
	DeliveryLog     string        `name:"delivery-log" env:"QUAYCAST_DELIVERY_LOG" default:"${delivery_log}" enum:"all,failures,off" help:"Which POSTs the delivery log records: all, failures (not delivered, and test sends), or off."`
	LogMaxAge       time.Duration `name:"log-max-age" env:"QUAYCAST_LOG_MAX_AGE" default:"${log_max_age}" help:"How long the delivery log and receivers' replies are kept."`
	MaxEndpoints    int           `name:"max-endpoints" env:"QUAYCAST_MAX_ENDPOINTS" default:"${max_endpoints}" help:"Consumer limit of the events stream: one consumer per endpoint."`

	MaxInFlight      int             `name:"max-in-flight" env:"QUAYCAST_MAX_IN_FLIGHT" default:"${max_in_flight}" help:"Per endpoint: deliveries in flight at once, across entities."`
	MaxInFlightTotal int             `name:"max-in-flight-total" env:"QUAYCAST_MAX_IN_FLIGHT_TOTAL" default:"${max_in_flight_total}" help:"Deliveries in flight at once over all endpoints (bounds sockets and memory)."`
	MaxAckPending    int             `name:"max-ack-pending" env:"QUAYCAST_MAX_ACK_PENDING" default:"${max_ack_pending}" help:"Per endpoint: events held by the gateway, delivered or queued, not yet acknowledged."`
	AckWait          time.Duration   `name:"ack-wait" env:"QUAYCAST_ACK_WAIT" default:"${ack_wait}" help:"JetStream redelivers an event not acknowledged or kept alive within this time."`
	MaxReplyBytes    ByteSize        `name:"max-reply-bytes" env:"QUAYCAST_MAX_REPLY_BYTES" default:"${max_reply_bytes}" help:"Largest receiver's reply read and passed on to NATS; at most ${max_reply_bytes_limit} (1MiB, NATS's default max payload, less 1KiB of headers)."`
	ReplyMemory      ByteSize        `name:"reply-memory" env:"QUAYCAST_REPLY_MEMORY" default:"${reply_memory}" help:"Receivers' replies held in memory at once, over all deliveries; a reply that does not fit is not passed on (the delivery still counts). At least --max-reply-bytes."`
	DeliveryTimeout  time.Duration   `name:"delivery-timeout" env:"QUAYCAST_DELIVERY_TIMEOUT" default:"${delivery_timeout}" help:"Deadline of one webhook POST."`
	RetrySchedule    []time.Duration `name:"retry-schedule" env:"QUAYCAST_RETRY_SCHEDULE" default:"${retry_schedule}" help:"Waits between attempts; the last one repeats."`
	MaxAttempts      int             `name:"max-attempts" env:"QUAYCAST_MAX_ATTEMPTS" default:"${max_attempts}" help:"POSTs of one event before it is dead-lettered (0 = no limit but --max-retry-age)."`
	MarksFlush       time.Duration   `name:"marks-flush" env:"QUAYCAST_MARKS_FLUSH" default:"${marks_flush}" help:"How often the durable delivery record is written: after a crash, what was delivered within it may be sent again."`
	MaxRetryAge      time.Duration   `name:"max-retry-age" env:"QUAYCAST_MAX_RETRY_AGE" default:"${max_retry_age}" help:"An event still failing this long after its first attempt is dead-lettered."`

	BreakerFailures    uint32        `name:"breaker-failures" env:"QUAYCAST_BREAKER_FAILURES" default:"${breaker_failures}" help:"Consecutive failed attempts that open an endpoint's circuit breaker."`
	BreakerRatio       float64       `name:"breaker-ratio" env:"QUAYCAST_BREAKER_RATIO" default:"${breaker_ratio}" help:"Or this share of failed attempts within --breaker-window ..."`
	BreakerMinRequests uint32        `name:"breaker-min-requests" env:"QUAYCAST_BREAKER_MIN_REQUESTS" default:"${breaker_min_requests}" help:"... once the window holds at least this many attempts."`
	BreakerWindow      time.Duration `name:"breaker-window" env:"QUAYCAST_BREAKER_WINDOW" default:"${breaker_window}" help:"Rolling window of the failure ratio."`
	BreakerCooldown    time.Duration `name:"breaker-cooldown" env:"QUAYCAST_BREAKER_COOLDOWN" default:"${breaker_cooldown}" help:"The longest wait between probes of an open breaker. The first probe goes after ${breaker_first_probe}, each wait after a failed one is 1.25 times longer (shortened by up to a fifth at random), up to this; a successful probe closes the breaker and starts the waits over."`

	TenantMaxEndpoints int     `name:"tenant-max-endpoints" env:"QUAYCAST_TENANT_MAX_ENDPOINTS" default:"${tenant_max_endpoints}" help:"Endpoints one tenant may have."`
	TenantRate         float64 `name:"tenant-rate" env:"QUAYCAST_TENANT_RATE" default:"${tenant_rate}" help:"POSTs per second to one tenant's endpoints together, on each gateway, so that one tenant's flood does not starve the others (0 = no limit)."`
	TenantBurst        int     `name:"tenant-burst" env:"QUAYCAST_TENANT_BURST" default:"${tenant_burst}" help:"POSTs above --tenant-rate one tenant may make at once after a quiet spell."`

	ShutdownTimeout time.Duration `name:"shutdown-timeout" env:"QUAYCAST_SHUTDOWN_TIMEOUT" default:"${shutdown_timeout}" help:"On SIGINT/SIGTERM, how long in-flight deliveries may take to finish."`
	NATSStopTimeout time.Duration `name:"nats-stop-timeout" env:"QUAYCAST_NATS_STOP_TIMEOUT" default:"${nats_stop_timeout}" help:"Once the gateway has stopped, how long the embedded NATS server may take to stop (about 10ms per endpoint) before the process exits without it, as after a crash: what it acknowledged is on disk, and it rebuilds its indexes at the next start (0 = wait until it has stopped)."`

	AllowTargets []string `name:"allow-target" env:"QUAYCAST_ALLOW_TARGETS" help:"Addresses or prefixes deliveries may go to although they are loopback, private, link-local or metadata (e.g. 127.0.0.1, 10.20.0.0/16); repeatable." placeholder:"IP|CIDR"`
	RequireHTTPS bool     `name:"require-https" env:"QUAYCAST_REQUIRE_HTTPS" help:"Refuse endpoint URLs that are not https."`

	AdminToken string `name:"admin-token" env:"QUAYCAST_ADMIN_TOKEN" help:"Bearer token with every right, including managing API tokens. Without it the API has no access control and listens on loopback only. Prefer the environment variable." placeholder:"TOKEN"`

	PublicURL             string        `name:"public-url" env:"QUAYCAST_PUBLIC_URL" help:"The gateway's address as browsers reach it (e.g. https://hooks.example.com): the start of portal links. Empty: the scheme and Host of the request that asks for the link." placeholder:"URL"`
	ConsoleFrameAncestors string        `name:"console-frame-ancestors" env:"QUAYCAST_CONSOLE_FRAME_ANCESTORS" default:"${console_frame_ancestors}" help:"Sites that may show tenants' portal pages in a frame (CSP frame-ancestors), space-separated, e.g. https://app.example.com; 'none': no site. The operator's console is never framed."`
	PortalSessionTTL      time.Duration `name:"portal-session-ttl" env:"QUAYCAST_PORTAL_SESSION_TTL" default:"${portal_session_ttl}" help:"How long a tenant's portal session opened by a portal link lasts, unless the link asks for less; the longest a link may ask for (at most 24h)."`

	SecretKey string `name:"secret-key" env:"QUAYCAST_SECRET_KEY" help:"Base64 of 32 random bytes: encrypts endpoint secrets at rest (AES-256-GCM). Prefer the environment variable to the flag." placeholder:"BASE64"`

	LogLevel  string `name:"log-level" env:"QUAYCAST_LOG_LEVEL" default:"${log_level}" enum:"debug,info,warn,error" help:"Log level."`
	LogFormat string `name:"log-format" env:"QUAYCAST_LOG_FORMAT" default:"${log_format}" enum:"auto,json,console" help:"Log format: auto is console on a terminal, JSON otherwise."`
}

// ValidFrameAncestors checks a CSP frame-ancestors source list: 'none' alone, or sources each
// 'self' or an http(s) origin whose host may start with "*." — never "*" alone, a bare scheme
// ("https:", which any site served over it matches) or "*.<top-level domain>" (any site could
// frame the portal), and nothing that could end the directive.
func ValidFrameAncestors(list string) error {
	sources := strings.Fields(list)
	if len(sources) == 0 {
		return fmt.Errorf("must not be empty: 'none' refuses every site")
	}
	for _, src := range sources {
		switch {
		case src == "'none'" && len(sources) == 1, src == "'self'":
			continue
		case src == "'none'":
			return fmt.Errorf("'none' must stand alone")
		case src == "*" || isSchemeSource(src):
			return fmt.Errorf("%q lets any site frame the portal: name the sites", src)
		}
		u, err := url.Parse(src)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") ||
			u.RawQuery != "" || u.Fragment != "" || u.User != nil || strings.ContainsAny(src, ";,'\"") {
			return fmt.Errorf("%q is not a source like https://app.example.com, https://*.example.com or 'self'", src)
		}
		host, wild := strings.CutPrefix(u.Hostname(), "*.")
		if host == "" || strings.Contains(host, "*") {
			return fmt.Errorf("%q: only a leading *. may stand for subdomains", src)
		}
		if wild && !strings.Contains(host, ".") {
			return fmt.Errorf("%q lets any site under a top-level domain frame the portal: name the sites", src)
		}
	}
	return nil
}

// isSchemeSource reports whether a CSP source is a scheme alone ("https:", "wss:", "data:"),
// which matches every site served over it.
func isSchemeSource(src string) bool {
	scheme, ok := strings.CutSuffix(src, ":")
	if !ok || scheme == "" || !isLetter(scheme[0]) {
		return false
	}
	for i := 1; i < len(scheme); i++ {
		c := scheme[i]
		if !isLetter(c) && (c < '0' || c > '9') && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// MaxReplyBytesLimit is the largest --max-reply-bytes: a reply is passed on as one NATS message,
// and a NATS server takes at most 1 MiB by default (max_payload), headers included; quaycast's
// headers on a reply (delivery id, endpoint id, entity, each at its longest) take under 1 KiB.
const MaxReplyBytesLimit = 1<<20 - 1<<10

// Default returns the documented defaults: package defaults holds each value once, and the CLI's
// tags read them from here through Vars.
func Default() Config {
	return Config{
		DataDir:               defaults.DataDir,
		NATSListen:            defaults.NATSListen,
		Listen:                defaults.Listen,
		PprofListen:           defaults.PprofListen,
		Replicas:              defaults.Replicas,
		Deliver:               defaults.Deliver,
		LeaseTTL:              defaults.LeaseTTL,
		StreamMaxAge:          defaults.StreamMaxAge,
		StreamMaxBytes:        defaults.StreamMaxBytes,
		DuplicateWindow:       defaults.DuplicateWindow,
		DeliveryLog:           defaults.DeliveryLog,
		LogMaxAge:             defaults.LogMaxAge,
		MaxEndpoints:          defaults.MaxEndpoints,
		MaxInFlight:           defaults.MaxInFlight,
		MaxInFlightTotal:      defaults.MaxInFlightTotal,
		MaxAckPending:         defaults.MaxAckPending,
		AckWait:               defaults.AckWait,
		MaxReplyBytes:         defaults.MaxReplyBytes,
		ReplyMemory:           defaults.ReplyMemory,
		DeliveryTimeout:       defaults.DeliveryTimeout,
		RetrySchedule:         defaults.RetrySchedule(),
		MaxAttempts:           defaults.MaxAttempts,
		MarksFlush:            defaults.MarksFlush,
		MaxRetryAge:           defaults.MaxRetryAge,
		BreakerFailures:       defaults.BreakerFailures,
		BreakerRatio:          defaults.BreakerRatio,
		BreakerMinRequests:    defaults.BreakerMinRequests,
		BreakerWindow:         defaults.BreakerWindow,
		BreakerCooldown:       defaults.BreakerCooldown,
		TenantMaxEndpoints:    defaults.TenantMaxEndpoints,
		TenantRate:            defaults.TenantRate,
		TenantBurst:           defaults.TenantBurst,
		ConsoleFrameAncestors: defaults.ConsoleFrameAncestors,
		PortalSessionTTL:      defaults.PortalSessionTTL,
		ShutdownTimeout:       defaults.ShutdownTimeout,
		NATSStopTimeout:       defaults.NATSStopTimeout,
		LogLevel:              defaults.LogLevel,
		LogFormat:             defaults.LogFormat,
	}
}

// Vars are the variables the struct tags use, for the CLI library to interpolate (kong.Vars):
// each setting's default as the flag spells it, named by its flag with "_" for "-"
// (`default:"${retry_schedule}"`), and max_reply_bytes_limit and breaker_first_probe for the help.
func Vars() map[string]string {
	vars := map[string]string{
		"max_reply_bytes_limit": strconv.Itoa(MaxReplyBytesLimit),
		"breaker_first_probe":   flagText(defaults.BreakerFirstProbe),
	}
	d := reflect.ValueOf(Default())
	for i := range d.NumField() {
		if name := d.Type().Field(i).Tag.Get("name"); name != "" {
			vars[strings.ReplaceAll(name, "-", "_")] = flagText(d.Field(i).Interface())
		}
	}
	return vars
}

// flagText writes a default as a user would type it on the command line.
func flagText(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []string:
		return strings.Join(v, ",")
	case time.Duration:
		return flagDuration(v)
	case []time.Duration:
		s := make([]string, len(v))
		for i, d := range v {
			s[i] = flagDuration(d)
		}
		return strings.Join(s, ",")
	case ByteSize:
		for _, u := range slices.Backward(units[:4]) { // the largest binary unit that divides it
			if n := int64(u.mult); v != 0 && int64(v)%n == 0 {
				return strconv.FormatInt(int64(v)/n, 10) + u.suffix
			}
		}
		return strconv.FormatInt(int64(v), 10)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	default: // int, uint32, bool
		return fmt.Sprint(v)
	}
}

// flagDuration writes d in the largest unit that gives a whole number ("168h", "2m", "5s"), except
// that a minute reads "60s", as the flags have always shown it.
func flagDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0 && d > time.Minute:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return d.String()
}

// FieldError names the setting that is wrong, by its flag name.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return "--" + e.Field + ": " + e.Reason }

// Validate reports the first bad setting.
func (c Config) Validate() error {
	if c.NATSURL == "" {
		if c.DataDir == "" {
			return fielderr.Flag("data-dir", "must not be empty")
		}
		if err := validHostPort(c.NATSListen); err != nil {
			return fielderr.Flag("nats-listen", err.Error())
		}
	} else {
		for _, u := range strings.Split(c.NATSURL, ",") {
			if p, err := url.Parse(strings.TrimSpace(u)); err != nil || p.Host == "" {
				return fielderr.Flag("nats-url", fmt.Sprintf("%q is not a URL like nats://host:4222", u))
			}
		}
	}
	if err := validHostPort(c.Listen); err != nil {
		return fielderr.Flag("listen", err.Error())
	}
	if err := c.validateNATSAccess(); err != nil {
		return err
	}
	if c.PprofListen != "" {
		if err := CheckPprofListen(c.PprofListen); err != nil {
			return err
		}
	}
	if c.OTLPEndpoint != "" {
		if err := validOTLPEndpoint(c.OTLPEndpoint); err != nil {
			return fielderr.Flag("otlp-endpoint", err.Error())
		}
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return fielderr.Flag("public-url", fmt.Sprintf("%q is not a URL like https://hooks.example.com", c.PublicURL))
		}
	}
	if err := ValidFrameAncestors(c.ConsoleFrameAncestors); err != nil {
		return fielderr.Flag("console-frame-ancestors", err.Error())
	}
	if c.AdminToken == "" && !loopback(c.Listen) {
		return fielderr.Flag("listen", "refusing to serve the API beyond loopback without access control: set --admin-token (QUAYCAST_ADMIN_TOKEN)")
	}
	if c.AdminToken != "" && len(c.AdminToken) < 16 {
		return fielderr.Flag("admin-token", "must be at least 16 characters")
	}
	switch {
	case c.StreamMaxAge <= 0:
		return fielderr.Flag("stream-max-age", "must be positive")
	case c.StreamMaxBytes < 0:
		return fielderr.Flag("stream-max-bytes", "must not be negative")
	case c.DuplicateWindow <= 0:
		return fielderr.Flag("duplicate-window", "must be positive")
	case c.DuplicateWindow > c.StreamMaxAge:
		return fielderr.Flag("duplicate-window", "must not exceed --stream-max-age")
	case c.LogMaxAge <= 0:
		return fielderr.Flag("log-max-age", "must be positive")
	case c.MaxEndpoints < 1:
		return fielderr.Flag("max-endpoints", "must be at least 1")
	case c.TenantMaxEndpoints < 1:
		return fielderr.Flag("tenant-max-endpoints", "must be at least 1")
	case c.TenantRate < 0:
		return fielderr.Flag("tenant-rate", "must be 0 (no limit) or more")
	case c.TenantBurst < 1:
		return fielderr.Flag("tenant-burst", "must be at least 1")
	case c.PortalSessionTTL < time.Minute || c.PortalSessionTTL > defaults.MaxPortalSessionTTL:
		return fielderr.Flag("portal-session-ttl", "must be from 1m to 24h")
	case c.MaxInFlight < 1:
		return fielderr.Flag("max-in-flight", "must be at least 1")
	case c.MaxInFlightTotal < c.MaxInFlight:
		return fielderr.Flag("max-in-flight-total", "must be at least --max-in-flight")
	case c.MaxAckPending < c.MaxInFlight:
		return fielderr.Flag("max-ack-pending", "must be at least --max-in-flight")
	case c.AckWait < 3*time.Second:
		return fielderr.Flag("ack-wait", "must be at least 3s")
	case c.MaxReplyBytes < 1 || c.MaxReplyBytes > MaxReplyBytesLimit:
		return fielderr.Flag("max-reply-bytes", fmt.Sprintf("must be from 1 to %d: what a NATS message carries (1MiB, the default max payload) less quaycast's headers", MaxReplyBytesLimit))
	case c.ReplyMemory < c.MaxReplyBytes:
		return fielderr.Flag("reply-memory", "must be at least --max-reply-bytes")
	case c.DeliveryTimeout <= 0:
		return fielderr.Flag("delivery-timeout", "must be positive")
	case c.DeliveryTimeout >= c.AckWait:
		return fielderr.Flag("delivery-timeout", "must be shorter than --ack-wait")
	case len(c.RetrySchedule) == 0:
		return fielderr.Flag("retry-schedule", "needs at least one wait")
	case c.MaxAttempts < 0:
		return fielderr.Flag("max-attempts", "must not be negative")
	case c.MarksFlush <= 0 || c.MarksFlush > time.Minute:
		return fielderr.Flag("marks-flush", "must be between 1ms and 1m")
	case c.MaxRetryAge <= 0:
		return fielderr.Flag("max-retry-age", "must be positive")
	case c.BreakerFailures < 1:
		return fielderr.Flag("breaker-failures", "must be at least 1")
	case c.BreakerRatio <= 0 || c.BreakerRatio > 1:
		return fielderr.Flag("breaker-ratio", "must be in (0, 1]")
	case c.BreakerMinRequests < 1:
		return fielderr.Flag("breaker-min-requests", "must be at least 1")
	case c.BreakerWindow < 6*time.Millisecond:
		return fielderr.Flag("breaker-window", "must be positive")
	case c.BreakerCooldown <= 0:
		return fielderr.Flag("breaker-cooldown", "must be positive")
	case c.ShutdownTimeout <= 0:
		return fielderr.Flag("shutdown-timeout", "must be positive")
	case c.NATSStopTimeout < 0:
		return fielderr.Flag("nats-stop-timeout", "must not be negative (0 waits until the server has stopped)")
	case c.Replicas < 1 || c.Replicas > 5:
		return fielderr.Flag("replicas", "must be from 1 to 5 (JetStream's limit)")
	case c.Replicas > 1 && c.NATSURL == "":
		return fielderr.Flag("replicas", "needs a NATS cluster: use it with --nats-url (the embedded server is a single node)")
	case c.LeaseTTL < time.Second:
		return fielderr.Flag("lease-ttl", "must be at least 1s")
	}
	for _, a := range c.AllowTargets {
		if _, err := netip.ParsePrefix(a); err != nil {
			if _, err := netip.ParseAddr(a); err != nil {
				return fielderr.Flag("allow-target", fmt.Sprintf("%q is not an IP address or prefix", a))
			}
		}
	}
	if c.SecretKey != "" {
		if _, err := c.SecretKeyBytes(); err != nil {
			return fielderr.Flag("secret-key", err.Error())
		}
	}
	for _, d := range c.RetrySchedule {
		if d <= 0 {
			return fielderr.Flag("retry-schedule", "waits must be positive")
		}
	}
	return nil
}

// validateNATSAccess checks the TLS and credential settings: pairs come together, credentials for
// an external NATS only with --nats-url, and at most one way to authenticate.
func (c Config) validateNATSAccess() error {
	pairs := []struct{ a, b, an, bn string }{
		{c.TLSCert, c.TLSKey, "tls-cert", "tls-key"},
		{c.NATSTLSCert, c.NATSTLSKey, "nats-tls-cert", "nats-tls-key"},
		{c.NATSClientCert, c.NATSClientKey, "nats-client-cert", "nats-client-key"},
		{c.NATSUser, c.NATSPassword, "nats-user", "nats-password"},
	}
	for _, p := range pairs {
		if (p.a == "") != (p.b == "") {
			if p.a == "" {
				return fielderr.Flag(p.an, "is required with --"+p.bn)
			}
			return fielderr.Flag(p.bn, "is required with --"+p.an)
		}
	}
	external := map[string]string{"nats-creds": c.NATSCreds, "nats-nkey": c.NATSNkey, "nats-user": c.NATSUser, "nats-token": c.NATSToken, "nats-ca": c.NATSCA, "nats-client-cert": c.NATSClientCert}
	ways := 0
	for _, name := range []string{"nats-creds", "nats-nkey", "nats-user", "nats-token", "nats-ca", "nats-client-cert"} {
		if external[name] == "" {
			continue
		}
		if c.NATSURL == "" {
			return fielderr.Flag(name, "is for an external NATS: use it with --nats-url (the embedded server makes its own credentials)")
		}
		if name != "nats-ca" && name != "nats-client-cert" {
			ways++
		}
	}
	if ways > 1 {
		return fielderr.Flag("nats-creds", "give one of --nats-creds, --nats-nkey, --nats-user or --nats-token")
	}
	if c.NATSURL != "" && c.NATSTLSCert != "" {
		return fielderr.Flag("nats-tls-cert", "is for the embedded server's listener; with --nats-url use --nats-ca (and --nats-client-cert)")
	}
	if c.NATSURL != "" && c.AdminToken != "" && c.SecretKey == "" {
		return fielderr.Flag("secret-key", "is required with --nats-url and --admin-token: it seals endpoint secrets and binds API tokens, and every gateway of one NATS must use the same key")
	}
	return nil
}

// SecretKeyBytes decodes SecretKey; nil when none is set.
func (c Config) SecretKeyBytes() ([]byte, error) {
	if c.SecretKey == "" {
		return nil, nil
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(c.SecretKey))
	if err != nil || len(b) != 32 {
		return nil, fmt.Errorf("must be the base64 of 32 bytes (e.g. openssl rand -base64 32)")
	}
	return b, nil
}

// OTLPTracesPath is the path of an OTLP/HTTP collector's traces.
const OTLPTracesPath = "/v1/traces"

// OTLPTracesURL is where spans go for an --otlp-endpoint: the collector's base URL with
// OTLPTracesPath added, or the URL as given when its path ends with it already.
func OTLPTracesURL(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil || strings.HasSuffix(u.Path, OTLPTracesPath) {
		return endpoint
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + OTLPTracesPath
	return u.String()
}

func validOTLPEndpoint(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
		return fmt.Errorf("%q is not an OTLP/HTTP collector URL like http://collector:4318", s)
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("%q: a collector URL has no query or fragment", s)
	case u.User != nil:
		return fmt.Errorf("%q: credentials go in OTEL_EXPORTER_OTLP_HEADERS, not the URL", u.Redacted())
	}
	return nil
}

// CheckPprofListen reports why addr cannot serve profiles (--pprof-listen, of the gateway or the
// bench harness): it must be host:port on a loopback address. Profiles show the process's memory,
// command line and code, and have no access control.
func CheckPprofListen(addr string) error {
	if err := validHostPort(addr); err != nil {
		return fielderr.Flag("pprof-listen", err.Error())
	}
	if !loopback(addr) {
		return fielderr.Flag("pprof-listen", fmt.Sprintf("%q is not a loopback address: profiles are served on 127.0.0.1, ::1 or localhost only", addr))
	}
	return nil
}

// loopback reports whether a listen address is on loopback only.
func loopback(hostport string) bool {
	host, _, _ := net.SplitHostPort(hostport)
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

func validHostPort(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q out of range", port)
	}
	return nil
}

// ByteSize is a size in bytes that reads "512MiB", "20GiB", "1.5GB" or a plain number.
type ByteSize int64

// units are the suffixes a size may have: the binary ones first, from KiB up.
var units = []struct {
	suffix string
	mult   float64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
}

// UnmarshalText parses a size with an optional unit.
func (b *ByteSize) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	mult := 1.0
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 {
		return fmt.Errorf("size %q: want a number with an optional unit such as MiB or GiB", string(text))
	}
	*b = ByteSize(f * mult)
	return nil
}
