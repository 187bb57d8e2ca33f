#!/usr/bin/env bash
# Issue #14, item 4, quaycast's own part: 10,000 endpoints that receive nothing, with the gateway
# on an external nats-server, so that the harness's figures (idle RSS and CPU, the stop after
# SIGTERM) are quaycast's process alone. Builds nats-server from the module's own dependency,
# starts it with JetStream on a free loopback port and a temporary store, then runs
#   quaycast bench --preset endpoints-10k --nats-url <that server>
# which starts `quaycast serve --nats-url ...` as its child, registers 10,000 endpoints (the
# creates' time), leaves them idle a minute (RSS at its end, CPU over it), publishes 200 events to them (first delivery
# per endpoint), and stops the child with SIGTERM (the stop's time; killed after 30 s).
#   scripts/idle10k-external.sh [RUNS] [-- extra bench flags]   (default 1 run; JSON in ${OUT:-/tmp/quaycast-idle10k})
#   QUAYCAST_BIN=/path/to/quaycast scripts/idle10k-external.sh ...   (that binary instead of one built here)
# Expected wall time on the 2-core reference machine: about 2.5 minutes a run (building nats-server
# and quaycast the first time, creates 7-8 s, waiting until all 10,000 deliver, idle 60 s, the
# events' delivery 20-40 s, the stop); up to the harness's 5-minute bound with the machine busy.
# Other processes' CPU during each run is reported (others_cpu_cores): the figures are noisy on a
# shared machine.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-1}
shift || true
[[ ${1:-} == -- ]] && shift
out=${OUT:-/tmp/quaycast-idle10k}
mkdir -p "$out"
# QUAYCAST_BIN: a quaycast binary built elsewhere (another commit, for a before/after pair).
if [[ -n ${QUAYCAST_BIN:-} ]]; then
  cp "$QUAYCAST_BIN" "$out/quaycast"
else
  go build -o "$out/quaycast" ./cmd/quaycast
fi
go build -o "$out/nats-server" github.com/nats-io/nats-server/v2

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
store=$(mktemp -d)
"$out/nats-server" -a 127.0.0.1 -p "$port" -js -sd "$store" >"$out/nats-server.log" 2>&1 &
nats_pid=$!
cleanup() {
  # Killed, not stopped: its store is thrown away, and stopping 10,000 file-stored consumers
  # takes it ~100 s (upstream; bench/upstream_shutdown_bench_test.go).
  kill -KILL "$nats_pid" 2>/dev/null || true
  wait "$nats_pid" 2>/dev/null || true
  rm -rf "$store"
}
trap cleanup EXIT
for _ in $(seq 50); do
  (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
  sleep 0.1
done

for i in $(seq "$runs"); do
  # Each run on a fresh server state: the last run's stream and consumers removed by the server
  # restart on an empty store.
  if [[ $i -gt 1 ]]; then
    kill -KILL "$nats_pid"; wait "$nats_pid" 2>/dev/null || true
    rm -rf "$store"; store=$(mktemp -d)
    "$out/nats-server" -a 127.0.0.1 -p "$port" -js -sd "$store" >>"$out/nats-server.log" 2>&1 &
    nats_pid=$!
    for _ in $(seq 50); do (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done
  fi
  if ! "$out/quaycast" bench --preset endpoints-10k --nats-url "nats://127.0.0.1:$port" --json --no-progress "$@" \
    >"$out/run-$i.json" 2>"$out/run-$i.err"; then
    echo "run $i: bench failed or its verdict failed (see $out/run-$i.err)" >&2
  fi
  python3 - "$out/run-$i.json" "$i" <<'PY'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except (OSError, ValueError) as e:
    print(f"run {sys.argv[2]}: no result ({e})"); sys.exit(0)
g = next(x for x in r["rounds"] if x["pipeline"] != "baseline")
reg, idle = g.get("registration") or {}, g.get("idle") or {}
lat = g.get("latency_ms") or {}
v = g.get("verdict", {})
print(f"run {sys.argv[2]}: creates {reg.get('seconds', 0):.1f} s (all workers {reg.get('ready_seconds', 0):.1f} s); "
      f"idle RSS {idle.get('rss_mib', 0):.0f} MiB, CPU {idle.get('cpu_percent', 0):.1f} %; "
      f"latency p50 {lat.get('p50', 0)/1000:.1f} s, p99 {lat.get('p99', 0)/1000:.1f} s, max {lat.get('max', 0)/1000:.1f} s "
      f"(deliver {g.get('deliver_s', 0):.1f} s); stop {r.get('gateway_stop_s', 0):.1f} s; "
      f"lost {v.get('lost')}, dup {v.get('duplicates')}, ooo {v.get('out_of_order')}; "
      f"others {g.get('others_cpu_cores', 0):.2f} cores; warnings {r['gateway_log']['warnings']}")
PY
done
