#!/usr/bin/env bash
# Both sides of the standard --baseline ratio profiled at once: the harness (the baseline
# pipeline, the receivers, the publisher; `bench --pprof-listen`) and the gateway it starts
# (`--gateway-arg=--pprof-listen`), in 5-second CPU profiles taken side by side for the whole run.
# It prints the CPU per delivery of each process over each round, and of each part — NATS server,
# NATS client, net/http client, the pipeline's own code, the receivers — over the slices where one
# round was running steadily (the harness above 1.2 cores with the gateway below 0.6: the
# baseline's; the gateway above 1.1 cores with the harness below 0.7: the gateway's). "The rest"
# is each process's own code beside those parts — the gateway's quaycast code, the harness's
# baseline pipeline and publisher — with the scheduler and the allocation it causes.
#   scripts/profile-ratio.sh [BENCH FLAGS...]   (profiles and JSON in ${OUT:-/tmp/quaycast-profile-ratio})
# Expected wall time on the 2-core reference machine: about 1 minute. The ports are 127.0.0.1:16070
# (harness) and :16071 (gateway) unless HARNESS_PPROF / GATEWAY_PPROF say otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/quaycast-profile-ratio}
harness=${HARNESS_PPROF:-127.0.0.1:16070}
gateway=${GATEWAY_PPROF:-127.0.0.1:16071}
rm -rf "$out"
mkdir -p "$out"
go build -o "$out/quaycast" ./cmd/quaycast

"$out/quaycast" bench --baseline --json --no-progress --pprof-listen "$harness" \
  --gateway-arg=--pprof-listen="$gateway" "$@" >"$out/run.json" 2>"$out/run.err" &
run=$!
sleep 1
i=0
while kill -0 "$run" 2>/dev/null; do # until the run ends; a slice cut short by its end is dropped
  i=$((i + 1))
  curl -sf -o "$out/h$i.pprof" "http://$harness/debug/pprof/profile?seconds=5" &
  hp=$!
  curl -sf -o "$out/g$i.pprof" "http://$gateway/debug/pprof/profile?seconds=5" || sleep 1
  wait "$hp" || true
done
wait "$run" || echo "bench exited with $? (see $out/run.err)" >&2

python3 - "$out" <<'PY'
import glob, json, re, subprocess, sys
out = sys.argv[1]
exe = f"{out}/quaycast"

def pprof(args):
    return subprocess.run(["go", "tool", "pprof", *args], capture_output=True, text=True).stdout

def seconds(text, pattern):  # "1.23s" or "450ms" after pattern
    m = re.search(pattern + r"([\d.]+)(m?s)", text)
    return 0.0 if not m else float(m.group(1)) / (1000 if m.group(2) == "ms" else 1)

def total(path):  # CPU seconds and wall seconds of a profile
    text = pprof(["-top", exe, path])
    return seconds(text, r"Total samples = "), seconds(text, r"Duration: ")

res = json.load(open(f"{out}/run.json"))
rounds = {r["name"]: r for r in res["rounds"]}
print("whole rounds, CPU per delivery (cpu_s over the deliveries):")
for name, r in rounds.items():
    g, h = r["gateway"]["cpu_s"] / r["delivered"] * 1e6, r["harness"]["cpu_s"] / r["delivered"] * 1e6
    print(f"  {name:9} {r['deliveries_per_s']:8.0f}/s  gateway {g:6.1f} µs  harness {h:6.1f} µs  together {g + h:6.1f} µs")
if "gateway" in rounds and "baseline" in rounds:
    print(f"  ratio {rounds['gateway']['deliveries_per_s'] / rounds['baseline']['deliveries_per_s']:.3f}")

steady = {"baseline": [], "gateway": []}
for h in sorted(glob.glob(f"{out}/h*.pprof"), key=lambda p: int(re.sub(r"\D", "", p.rsplit("/", 1)[1]))):
    g = h.replace("/h", "/g")
    try:
        (hc, hw), (gc, gw) = total(h), total(g)
    except FileNotFoundError:
        continue
    if hw < 4 or gw < 4:
        continue
    if hc / hw > 1.2 and gc / gw < 0.6:
        steady["baseline"].append((h, g, hw))
    elif gc / gw > 1.1 and hc / hw < 0.7:
        steady["gateway"].append((h, g, hw))

parts = [  # name, process, pprof -focus (rows overlap a little: pprof counts a stack under each)
    ("NATS server", "g", r"nats-server"),
    ("NATS client (nats.go)", "*", r"nats%2ego"),
    ("net/http client", "*", r"net/http\.\(\*Transport\)|net/http\.\(\*persistConn\)|net/http\.\(\*Client\)"),
    ("receivers (net/http server)", "h", r"net/http\.\(\*conn\)\.serve"),
    ("garbage collector (background)", "*", r"runtime\.gcBgMarkWorker"),
]
for name, slices in steady.items():
    if not slices or name not in rounds:
        print(f"{name} round: no steady slice")
        continue
    n = rounds[name]["deliveries_per_s"] * sum(w for _, _, w in slices)
    merged = {}
    for proc in "hg":
        merged[proc] = f"{out}/{name}-{proc}.pprof"
        with open(merged[proc], "wb") as f:
            f.write(subprocess.run(["go", "tool", "pprof", "-proto", *[s[0 if proc == "h" else 1] for s in slices]],
                                   capture_output=True).stdout)
    print(f"{name} round, {len(slices)} steady slices, µs per delivery:")
    for proc, label in (("g", "gateway process"), ("h", "harness process")):
        cpu = total(merged[proc])[0]
        known = 0.0
        print(f"  {label:34} {cpu / n * 1e6:6.1f}")
        for part, where, focus in parts:
            if where not in ("*", proc):
                continue
            s = seconds(pprof(["-top", "-focus=" + focus, exe, merged[proc]]), r"Showing nodes accounting for ")
            if s:
                known += s
                print(f"    {part:32} {s / n * 1e6:6.1f}")
        print(f"    {'the rest (own code, scheduler)':32} {(cpu - known) / n * 1e6:6.1f}")
PY
