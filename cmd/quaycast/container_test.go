package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

// There is no Docker engine where the tests run, so the container files are checked by reading
// them: every flag and QUAYCAST_ variable they pass is one the binary has, the configuration
// they make is valid once the documented variables are set, and the image has what a container
// needs.

// dockerfile is the final stage of a Dockerfile.
type dockerfile struct {
	from       string
	env        map[string]string
	user       string
	expose     []string
	volumes    []string
	entrypoint []string
	cmd        []string
	copies     []string // COPY lines, as written
}

func readDockerfile(t *testing.T, file string) dockerfile {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var d dockerfile
	text := strings.ReplaceAll(string(raw), "\\\n", " ") // continuation lines
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		instr, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(instr) {
		case "FROM": // a new stage: only the last one is the image
			d = dockerfile{from: strings.Fields(rest)[0], env: map[string]string{}}
		case "ENV":
			for _, kv := range strings.Fields(rest) {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					t.Fatalf("%s: ENV %q: use the KEY=VALUE form", file, rest)
				}
				d.env[k] = v
			}
		case "USER":
			d.user = rest
		case "EXPOSE":
			d.expose = append(d.expose, strings.Fields(rest)...)
		case "VOLUME":
			d.volumes = append(d.volumes, execForm(t, file, rest, true)...)
		case "ENTRYPOINT":
			d.entrypoint = execForm(t, file, rest, false)
		case "CMD":
			d.cmd = execForm(t, file, rest, false)
		case "COPY":
			d.copies = append(d.copies, rest)
		}
	}
	return d
}

// execForm parses a JSON array; the shell form is refused (a distroless image has no shell),
// except for VOLUME, where it is a list of paths.
func execForm(t *testing.T, file, s string, wordsOK bool) []string {
	t.Helper()
	var out []string
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		if wordsOK {
			return strings.Fields(s)
		}
		t.Fatalf("%s: %q is not the exec form [\"...\"]: %v", file, s, err)
	}
	return out
}

// serveConfig parses `quaycast <args>` with the environment env (QUAYCAST_ variables) — each
// variable given as the flag it belongs to, so a variable the binary does not know fails — and
// returns the serve command's configuration.
func serveConfig(t *testing.T, where string, args []string, env map[string]string) (*serveCmd, error) {
	t.Helper()
	envArgs := envFlags(t, where, env)
	if len(args) == 0 || args[0] != "serve" {
		t.Fatalf("%s: command %q does not run quaycast serve", where, args)
	}
	// The variables first: a flag on the command line wins over the environment.
	var c cli
	parser, err := newParser(&c, kong.Exit(func(code int) { t.Fatalf("%s: kong exited with %d", where, code) }))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parser.Parse(append(append([]string{"serve"}, envArgs...), args[1:]...)); err != nil {
		return nil, fmt.Errorf("%s: quaycast %s: %w", where, strings.Join(args, " "), err)
	}
	return &c.Serve, nil
}

// envFlags is the QUAYCAST_ variables of env as the flags of quaycast serve they set; a
// variable the binary does not know fails the test.
func envFlags(t *testing.T, where string, env map[string]string) []string {
	t.Helper()
	flagOf := map[string]string{}
	for _, f := range commandNode(t, "serve").Flags {
		for _, e := range f.Envs {
			flagOf[e] = f.Name
		}
	}
	var args []string
	for _, k := range slices.Sorted(maps.Keys(env)) {
		if !strings.HasPrefix(k, "QUAYCAST_") {
			continue
		}
		name, ok := flagOf[k]
		if !ok {
			t.Errorf("%s: the environment variable %s is no setting of quaycast serve", where, k)
			continue
		}
		args = append(args, "--"+name+"="+env[k])
	}
	return args
}

func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return port
}

const (
	sampleAdminToken = "0123456789abcdef0123456789abcdef"
)

var sampleSecretKey = base64.StdEncoding.EncodeToString(make([]byte, 32))

// The image: the binary's own flags and variables, valid with QUAYCAST_ADMIN_TOKEN set and refused
// without it; listening on all interfaces in the container (API and embedded NATS), the ports
// exposed, /data a volume owned by the non-root user it runs as.
func TestDockerfile(t *testing.T) {
	t.Parallel()
	d := readDockerfile(t, "../../Dockerfile")
	if !slices.Equal(d.entrypoint, []string{"/quaycast"}) {
		t.Errorf("ENTRYPOINT %q, want [\"/quaycast\"]", d.entrypoint)
	}
	args := d.cmd
	withToken := merged(d.env, map[string]string{"QUAYCAST_ADMIN_TOKEN": sampleAdminToken})
	s, err := serveConfig(t, "Dockerfile", args, withToken)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err != nil {
		t.Errorf("Dockerfile with QUAYCAST_ADMIN_TOKEN set: %v", err)
	}
	if s.NATSURL != "" {
		t.Errorf("the image should run the embedded NATS, not connect to %s", s.NATSURL)
	}
	for flag, addr := range map[string]string{"listen": s.Listen, "nats-listen": s.NATSListen} {
		if host, _, _ := net.SplitHostPort(addr); host != "0.0.0.0" && host != "" && host != "::" {
			t.Errorf("--%s %s: in a container it must listen on all interfaces", flag, addr)
		}
		if !slices.Contains(d.expose, portOf(t, addr)) {
			t.Errorf("--%s %s: port not in EXPOSE %v", flag, addr, d.expose)
		}
	}
	if s.DataDir != "/data" || !slices.Contains(d.volumes, "/data") {
		t.Errorf("data dir %q, VOLUME %v: want /data, a volume", s.DataDir, d.volumes)
	}

	// Without the token the configuration is refused (when parsed, or by Validate), naming the
	// variable to set.
	s, err = serveConfig(t, "Dockerfile", args, d.env)
	if err == nil {
		err = s.Validate()
	}
	if err == nil || !strings.Contains(err.Error(), "QUAYCAST_ADMIN_TOKEN") {
		t.Errorf("Dockerfile without QUAYCAST_ADMIN_TOKEN: %v, want an error naming it", err)
	}

	// Non-root, and /data made by the build owned by that user.
	uid, _, _ := strings.Cut(d.user, ":")
	if uid == "" || uid == "0" || uid == "root" {
		t.Errorf("USER %q: the image must not run as root", d.user)
	}
	if !strings.HasSuffix(d.from, ":nonroot") {
		t.Errorf("FROM %s: use the distroless nonroot variant", d.from)
	}
	owned := regexp.MustCompile(`--chown=` + regexp.QuoteMeta(uid) + `(:\S+)?\s.*\s/data/?$`)
	if !slices.ContainsFunc(d.copies, owned.MatchString) {
		t.Errorf("no COPY --chown=%s ... /data: the volume's mount point must belong to the image's user (COPY lines %q)", uid, d.copies)
	}
}

// The image's default command without QUAYCAST_ADMIN_TOKEN stops at once, saying why in a JSON
// log line (what `docker logs` shows).
func TestDockerfileWithoutAdminToken(t *testing.T) {
	t.Parallel()
	d := readDockerfile(t, "../../Dockerfile")
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "QUAYCAST_") {
			env = append(env, kv)
		}
	}
	for k, v := range d.env {
		if k == "QUAYCAST_DATA_DIR" {
			v = t.TempDir()
		}
		env = append(env, k+"="+v)
	}
	cmd := d.cmd
	out, code := runUntilExit(t, env, cmd...)
	if code != 2 || !strings.Contains(out, "QUAYCAST_ADMIN_TOKEN") {
		t.Errorf("the image's command without QUAYCAST_ADMIN_TOKEN: exit %d, stderr\n%s\nwant exit 2 naming QUAYCAST_ADMIN_TOKEN", code, out)
	}
	checkJSONLines(t, out)
}

func merged(a, b map[string]string) map[string]string {
	out := make(map[string]string, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// The build context leaves out a data dir (a JetStream store with secrets) and binaries, and
// keeps the sources.
func TestDockerignore(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for line := range strings.Lines(string(raw)) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, line)
		}
	}
	for _, p := range []string{"data/jetstream/quaycast/streams/QUAYCAST_EVENTS/msgs/1.blk", "data/auth/secret.key",
		"quaycast", "cmd/quaycast/quaycast", "bench/bench.test", "cpu.prof", "examples/natsjs/node_modules/nats/package.json", ".git/config"} {
		if !dockerIgnored(patterns, p) {
			t.Errorf(".dockerignore: %s is in the build context", p)
		}
	}
	for _, p := range []string{"go.mod", "go.sum", "cmd/quaycast/main.go", "gateway/openapi.json", "gateway/signature/testdata/x", "examples/receiver.py"} {
		if dockerIgnored(patterns, p) {
			t.Errorf(".dockerignore: %s is left out of the build context", p)
		}
	}
}

// dockerIgnored matches a context path against .dockerignore patterns as Docker does for these
// forms: anchored at the context's root, a match of a folder covers what is inside, `**/`
// matches any number of folders, the last matching pattern wins, `!` re-includes.
func dockerIgnored(patterns []string, p string) bool {
	ignored := false
	for _, pat := range patterns {
		neg := strings.HasPrefix(pat, "!")
		pat = path.Clean(strings.TrimPrefix(strings.TrimPrefix(pat, "!"), "/"))
		if matchesDockerPattern(pat, p) {
			ignored = !neg
		}
	}
	return ignored
}

func matchesDockerPattern(pat, p string) bool {
	parts := strings.Split(p, "/")
	for i := 1; i <= len(parts); i++ { // p or a folder above it
		prefix := strings.Join(parts[:i], "/")
		if ok, _ := path.Match(pat, prefix); ok {
			return true
		}
		if rest, ok := strings.CutPrefix(pat, "**/"); ok {
			for j := 0; j < i; j++ {
				if ok, _ := path.Match(rest, strings.Join(parts[j:i], "/")); ok {
					return true
				}
			}
		}
	}
	return false
}
