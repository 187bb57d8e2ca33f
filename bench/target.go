package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/nats-io/nats.go"
	"io"
	"maps"
	"net"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/config"
	"github.com/quaycast/quaycast/gateway"
	"github.com/quaycast/quaycast/natsauth"
)

// Target kinds.
const (
	TargetChild     = "child"      // `quaycast serve` started by the harness: CPU and memory measured
	TargetRemote    = "remote"     // a gateway already running at --api and --nats-url
	TargetInProcess = "in-process" // gateway.New in the harness's own process (tests)
)

// target is the gateway under test.
type target struct {
	kind   string
	api    string
	nats   string
	pub    []nats.Option // how the publisher authenticates
	sub    []nats.Option // how the baseline's consumers authenticate
	pid    int           // child only
	exited chan struct{} // child only: closed when it exited
	stop   func() error
	logs   *tail
}

// gone returns an error if the gateway process has exited.
func (t *target) gone() error {
	if t.exited == nil {
		return nil
	}
	select {
	case <-t.exited:
		return fmt.Errorf("the gateway (pid %d) exited during the run; its last log lines:\n%s", t.pid, t.logs)
	default:
		return nil
	}
}

// ProcStats are a process's figures read from /proc.
type ProcStats struct {
	CPU     time.Duration // user + system
	RSS     int64         // resident now, bytes
	PeakRSS int64         // high-water mark, bytes
}

// openFiles counts a process's open file descriptors (sockets included); -1 if unreadable.
func openFiles(pid int) int {
	d, err := os.Open("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		return -1
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return -1
	}
	return len(names)
}

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat: 100 on every Linux
// architecture Go runs on.
const clockTicks = 100

// readProc reads CPU time from /proc/<pid>/stat and memory from /proc/<pid>/status.
func readProc(pid int) (ProcStats, error) {
	var ps ProcStats
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ps, fmt.Errorf("read process stats: %w", err)
	}
	// The command name (field 2) may hold spaces; the fields after its closing parenthesis start
	// at field 3 (state). utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return ps, errors.New("read process stats: unexpected /proc stat format")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return ps, errors.New("read process stats: unexpected /proc stat format")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return ps, errors.New("read process stats: unexpected /proc stat format")
	}
	ps.CPU = time.Duration(ut+st) * time.Second / clockTicks
	b, err = os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return ps, fmt.Errorf("read process status: %w", err)
	}
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		var dst *int64
		switch k {
		case "VmRSS":
			dst = &ps.RSS
		case "VmHWM":
			dst = &ps.PeakRSS
		default:
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err == nil {
			*dst = n << 10
		}
	}
	return ps, nil
}

// procStats reads the target's figures; ok is false when it is not a process of ours.
func (t *target) procStats() (ProcStats, bool) {
	if t.pid == 0 {
		return ProcStats{}, false
	}
	ps, err := readProc(t.pid)
	return ps, err == nil
}

// tail keeps the last lines a child logged, and counts warnings and errors.
type tail struct {
	mu       sync.Mutex
	lines    []string
	warnings int
	errors   int
	distinct map[string]int // level, message and error of warnings and errors -> count
}

func (l *tail) add(line string) {
	var e struct{ Level, Message, Error string }
	if json.Unmarshal([]byte(line), &e) != nil { // not zerolog: the CLI's last word, or a panic
		e.Level, e.Message = "stderr", strings.TrimSpace(line)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch e.Level {
	case "warn":
		l.warnings++
	case "error", "fatal", "panic":
		l.errors++
	}
	if e.Level != "" && e.Level != "info" && e.Level != "debug" && e.Level != "trace" {
		if l.distinct == nil {
			l.distinct = map[string]int{}
		}
		k := e.Level + ": " + e.Message
		if e.Error != "" {
			k += ": " + e.Error
		}
		k = idLike.ReplaceAllString(k, "…") // one entry per kind, not per event or endpoint
		if _, ok := l.distinct[k]; ok || len(l.distinct) < 30 {
			l.distinct[k]++
		}
	}
	l.lines = append(l.lines, line)
	if len(l.lines) > 200 {
		l.lines = l.lines[len(l.lines)-100:]
	}
}

func (l *tail) String() string {
	if l == nil {
		return ""
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func (l *tail) counts() (warnings, errors int, distinct map[string]int) {
	if l == nil {
		return 0, 0, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.warnings, l.errors, maps.Clone(l.distinct)
}

// idLike matches ids, numbers and addresses in log lines.
var idLike = regexp.MustCompile(`ep_[a-z0-9]+|[A-Za-z0-9_.:-]*[0-9][A-Za-z0-9_.:-]*`)

// freeAddr returns a loopback address free at the time of the call.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startChild runs `exe serve` on loopback with its own data dir, and waits until its API answers.
func startChild(ctx context.Context, exe, dataDir, logLevel string, extra []string) (*target, error) {
	natsAddr, err := freeAddr()
	if err != nil {
		return nil, fmt.Errorf("free port: %w", err)
	}
	apiAddr, err := freeAddr()
	if err != nil {
		return nil, fmt.Errorf("free port: %w", err)
	}
	args := append([]string{"serve", "--data-dir", dataDir, "--nats-listen", natsAddr, "--listen", apiAddr,
		"--log-format", "json", "--log-level", logLevel,
		"--allow-target", "127.0.0.1", // the receivers are on loopback, which the gateway refuses by default
	}, extra...)
	cmd := exec.Command(exe, args...)
	// The child is configured by its flags only: a QUAYCAST_NATS_URL in our environment must not
	// point it elsewhere.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "QUAYCAST_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start gateway %s: %w", exe, err)
	}
	exited := make(chan struct{})
	t := &target{kind: TargetChild, api: "http://" + apiAddr, nats: "nats://" + natsAddr, pid: cmd.Process.Pid, logs: &tail{}, exited: exited}
	var waitErr error
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			t.logs.add(sc.Text())
		}
		_, _ = io.Copy(io.Discard, stderr)
		waitErr = cmd.Wait()
		if waitErr != nil {
			t.logs.add("exit: " + waitErr.Error())
		}
		close(exited)
	}()
	t.stop = func() error {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("gateway pid %d did not stop within 30s of SIGTERM: killed", t.pid)
		}
		if waitErr != nil {
			return fmt.Errorf("gateway exited: %w", waitErr)
		}
		return nil
	}
	c := gateway.NewClient(t.api)
	deadline := time.Now().Add(60 * time.Second)
	for {
		hctx, cancel := context.WithTimeout(ctx, time.Second)
		err := c.Do(hctx, "GET", "/healthz", nil, nil)
		cancel()
		if err == nil {
			return t, nil
		}
		select {
		case <-exited:
			return nil, fmt.Errorf("gateway exited at start: %v\n%s", waitErr, t.logs)
		case <-ctx.Done():
			_ = t.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = t.stop()
			return nil, fmt.Errorf("gateway not answering on %s within 60s\n%s", t.api, t.logs)
		}
	}
}

// startInProcess runs a gateway with cfg in this process.
func startInProcess(ctx context.Context, cfg config.Config, log zerolog.Logger) (*target, error) {
	g := gateway.New(cfg, log)
	gctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- g.Run(gctx) }()
	select {
	case <-g.Ready():
	case err := <-done:
		cancel()
		return nil, fmt.Errorf("gateway: %w", err)
	case <-time.After(60 * time.Second):
		cancel()
		return nil, errors.New("gateway not ready within 60s")
	}
	return &target{kind: TargetInProcess, api: g.APIURL(), nats: g.NATSURL(), stop: func() error {
		cancel()
		return <-done
	}}, nil
}

// loopbackURL checks that raw is a URL on a loopback address: the harness sends traffic to
// loopback only.
func loopbackURL(field, raw string) error {
	for _, one := range strings.Split(raw, ",") {
		u, err := url.Parse(strings.TrimSpace(one))
		if err != nil || u.Host == "" {
			return &config.FieldError{Field: field, Reason: fmt.Sprintf("%q is not a URL", one)}
		}
		h := u.Hostname()
		if h == "localhost" {
			continue
		}
		if ip := net.ParseIP(h); ip == nil || !ip.IsLoopback() {
			return &config.FieldError{Field: field, Reason: fmt.Sprintf("%q is not a loopback address: the harness sends traffic to loopback only", h)}
		}
	}
	return nil
}

// RaiseOpenFileLimit lifts this process's limit on open files (which a gateway it starts
// inherits) as far as it may: to the hard limit, or, where it is allowed to (root), to 1<<20.
// Every connection the gateway makes to a receiver costs a file descriptor on both sides, and
// 1,000 endpoints with 64 deliveries in flight each make tens of thousands of them.
func RaiseOpenFileLimit() (from, to uint64, err error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0, err
	}
	from = lim.Cur
	want := syscall.Rlimit{Cur: max(lim.Max, 1<<20), Max: max(lim.Max, 1<<20)}
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) != nil {
		want = syscall.Rlimit{Cur: lim.Max, Max: lim.Max}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
			return from, from, err
		}
	}
	return from, want.Cur, nil
}

// localAccess reads the credentials a gateway the harness started keeps in its data dir: the local
// publisher's to publish, quaycast's own for the baseline, so that both go through the same
// authentication (and, with ca, TLS) as the gateway's own traffic.
func (t *target) localAccess(dataDir, ca string) error {
	for _, c := range []struct {
		file string
		to   *[]nats.Option
	}{{natsauth.PublisherFile, &t.pub}, {natsauth.InternalFile, &t.sub}} {
		b, err := os.ReadFile(natsauth.Path(dataDir, c.file))
		if err != nil {
			return fmt.Errorf("gateway credentials: %w", err)
		}
		*c.to = []nats.Option{nats.Token(strings.TrimSpace(string(b)))}
		if ca != "" {
			*c.to = append(*c.to, nats.RootCAs(ca))
		}
	}
	return nil
}
