package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/quaycast/quaycast/gateway"
)

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

// machineBusy is the CPU time every core of the machine spent busy since boot (user, nice,
// system, irq, softirq and steal of /proc/stat's "cpu" line): less the run's own processes, what
// other work on the machine took during a round.
func machineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, errors.New("read /proc/stat: unexpected format")
	}
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} { // user nice system (idle iowait) irq softirq steal
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, errors.New("read /proc/stat: unexpected format")
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// procMeter follows one process over a round: its CPU time, its memory at the end, and the most
// open files seen.
type procMeter struct {
	pid         int
	start, last ProcStats // last: the last figures read, for when the process is gone at the end
	ok          bool
	fds         int
}

func newProcMeter(t *target) *procMeter {
	p := &procMeter{pid: t.pid}
	p.start, p.ok = t.procStats()
	p.last = p.start
	return p
}

func (p *procMeter) sample() {
	if p.pid == 0 {
		return
	}
	p.fds = max(p.fds, openFiles(p.pid))
	if ps, err := readProc(p.pid); err == nil {
		p.last = ps
	}
}

// sumUsage is the CPU time of ps over the round, also per 1,000 of deliveries, and their memory
// and open files at the end, added up; nil when none of them is a process of ours.
func sumUsage(ps []*procMeter, deliveries int) *Usage {
	var end ProcStats
	var cpu time.Duration
	var fds int
	n := 0
	for _, p := range ps {
		if !p.ok {
			continue
		}
		n++
		cpu += p.last.CPU - p.start.CPU
		end.RSS += p.last.RSS
		end.PeakRSS += p.last.PeakRSS
		fds += p.fds
	}
	if n == 0 {
		return nil
	}
	u := usage(end, cpu)
	if deliveries > 0 {
		u.CPUMsPer1k = 1e6 * u.CPUSeconds / float64(deliveries)
	}
	u.PeakFDs = fds
	return u
}

// meter measures the gateways and NATS nodes (those that are processes of ours) and this process
// over a round: CPU time, memory at the end, and the most open files seen. It also reads each
// gateway's /metrics at the start, for its counters' rise over the round.
type meter struct {
	inProcess bool
	gws       []*procMeter      // as r.gws at the start of the round
	clients   []*gateway.Client // their APIs, for /metrics
	nodes     []*procMeter
	counters  []*gatewayMetrics // per gateway at the start, nil if unreadable
	self0     ProcStats
	selfErr   error
	selfFDs   int
	tl        *timeline
	recent    Histogram     // reused by each sample
	busy0     time.Duration // machineBusy at the start
	busyErr   error
	start     time.Time
}

func (r *runner) startMeter(ctx context.Context) *meter {
	m := &meter{inProcess: r.tgt.kind == TargetInProcess}
	for _, t := range r.gws {
		m.gws = append(m.gws, newProcMeter(t))
		m.clients = append(m.clients, t.client)
		var c *gatewayMetrics
		if gm, err := scrape(ctx, t.client); err == nil {
			c = &gm
		}
		m.counters = append(m.counters, c)
	}
	for _, t := range r.nodes {
		m.nodes = append(m.nodes, newProcMeter(t))
	}
	m.self0, m.selfErr = readProc(os.Getpid())
	m.busy0, m.busyErr = machineBusy()
	m.start = time.Now()
	gw, _ := m.gateways()
	m.tl = newTimeline(m.start, gw, m.self0)
	return m
}

// sample reads the processes' open files and their figures, and adds a point to the timeline with
// the latencies s recorded since the last sample.
func (m *meter) sample(s *sink) {
	for _, p := range m.gws {
		p.sample()
	}
	for _, p := range m.nodes {
		p.sample()
	}
	m.selfFDs = max(m.selfFDs, openFiles(os.Getpid()))
	self, err := readProc(os.Getpid())
	m.recent.Reset()
	s.takeRecent(&m.recent)
	gw, gwOK := m.gateways()
	m.tl.sample(time.Now(), &m.recent, gw, gwOK, self, err == nil && m.selfErr == nil, m.counts())
}

// gatewayCounts are the gateways' goroutines and connections to receivers, added up over
// gateways; zero when unknown.
type gatewayCounts struct {
	goroutines, connections int
	hasConnections          bool // every gateway exports its connections
}

// counts reads the gateways' counts from their /metrics; zero when one cannot be read (an
// in-process gateway shares the harness's goroutines, which say nothing).
func (m *meter) counts() gatewayCounts {
	if m.inProcess {
		return gatewayCounts{}
	}
	c := gatewayCounts{hasConnections: len(m.clients) > 0}
	for _, cl := range m.clients {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		gm, err := scrape(ctx, cl)
		cancel()
		if err != nil {
			return gatewayCounts{}
		}
		c.goroutines += int(gm.goroutines)
		c.connections += int(gm.connections)
		c.hasConnections = c.hasConnections && gm.hasConnections
	}
	return c
}

// gateways adds up the gateways' last figures; ok is false when none is a process of ours.
func (m *meter) gateways() (sum ProcStats, ok bool) {
	for _, p := range m.gws {
		if p.ok {
			sum.CPU += p.last.CPU
			sum.RSS += p.last.RSS
			ok = true
		}
	}
	return sum, ok
}

// fill writes the round's gateway and harness usage and its timeline; the gateways' CPU time is
// also given per 1,000 of the deliveries. The harness's CPU time means nothing with the gateway
// inside it.
func (m *meter) fill(rd *Round, deliveries int) {
	rd.Timeline = m.tl.result()
	if u := sumUsage(m.gws, deliveries); u != nil {
		rd.Gateway = u
	}
	self1, err := readProc(os.Getpid())
	if err == nil && m.selfErr == nil && !m.inProcess {
		rd.Harness = &Usage{CPUSeconds: (self1.CPU - m.self0.CPU).Seconds(), PeakFDs: m.selfFDs}
	}
	// What the rest of the machine took meanwhile: the busy time of every core less the run's own
	// processes (those that are ours to read), in cores on average over the round.
	busy1, berr := machineBusy()
	if berr != nil || m.busyErr != nil || err != nil || m.selfErr != nil {
		return
	}
	ours := self1.CPU - m.self0.CPU
	for _, p := range append(slices.Clone(m.gws), m.nodes...) {
		if p.ok {
			ours += p.last.CPU - p.start.CPU
		}
	}
	if wall := time.Since(m.start).Seconds(); wall > 0 {
		rd.OthersCPU = max(0, (busy1-m.busy0-ours).Seconds()/wall)
	}
}
