#!/usr/bin/env bash
# measure.sh reproduces the intake figures in docs/BENCHMARKS.md on this machine:
#
#   a  `resultgate serve --durability os` under `resultgate bench --conns 8
#      --count $COUNT` with the 2 KB ORU fixture: msg/s, p50/p90/p99/max
#   b  simple-hl7's MLLP server (interop/ack-server.js: ACKs, stores nothing)
#      under the same bench, in the same round as a; ratio a/b per round
#   c  `resultgate serve --durability fsync` under bench (--count $FSYNC_COUNT)
#      against the raw JetStream sync-always publish rate (8 synchronous
#      publishers, BenchmarkRawJetStreamPublish/fsync) in the same round; ratio
#   d  RSS of `serve` (VmRSS from /proc/PID/status) every $RSS_EVERY s during a
#      $RSS_COUNT-message bench, durability os, and for $RSS_TAIL s after it (the
#      pipeline works off its backlog); with RSS_CONFIG=FILE, serve runs with
#      --config FILE (e.g. a short intake.duplicate_window). Each sample also
#      records the intake's ACKed count, the classify step's processed count and
#      the Go heap in use (from /metrics)
#   e  peak RSS increase (VmHWM) of `serve` for one message just under the 16 MiB
#      maximum frame
#   p  issue 14 §3, per round: `serve` with its pipeline paused (the classify
#      consumers paused through JetStream, cmd.test -test.run TestPauseClassify)
#      and running, durability os and fsync, against simple-hl7 and the raw
#      JetStream sync-always publish rate, all under the same bench
#      (--count $P_COUNT; fsync runs --count $FSYNC_COUNT); ratios per round
#
# Each of a-c runs $ROUNDS rounds, each round on a fresh data directory; the
# summary quotes medians. Everything listens on 127.0.0.1 and every run ends by
# itself. Usage: interop/measure.sh [OUTDIR]   (env: ROUNDS COUNT FSYNC_COUNT
# RSS_COUNT RSS_EVERY RSS_TAIL RSS_CONFIG SECTIONS=abcde PROFILE=1 for a CPU profile
# of the intake)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${1:-$(mktemp -d /tmp/resultgate-measure.XXXXXX)}
ROUNDS=${ROUNDS:-3}
COUNT=${COUNT:-100000}
FSYNC_COUNT=${FSYNC_COUNT:-3000}
RSS_COUNT=${RSS_COUNT:-1000000}
RSS_EVERY=${RSS_EVERY:-5}
RSS_TAIL=${RSS_TAIL:-0}
RSS_CONFIG=${RSS_CONFIG:-}
SECTIONS=${SECTIONS:-abcde}
P_COUNT=${P_COUNT:-30000}
FIXTURE=$ROOT/testdata/hl7/oru_r01_v251.hl7
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
echo "measure.sh: results in $OUT"

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "go: $(go version)"
  echo "node: $(node --version 2>/dev/null || echo none)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
  echo "nproc: $(nproc)"
  echo "kernel: $(uname -r)"
  echo "commit: ${GIT_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}"
  echo "data disk: $(df -h "$OUT" | tail -1)"
  echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/machine.txt"

go build -o "$OUT/resultgate" ./cmd/resultgate
go test -c -o "$OUT/cmd.test" ./cmd/resultgate
RG=$OUT/resultgate

# Processes this script started, stopped on exit.
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

# wait_line FILE PATTERN: wait (bounded, 60 s) until FILE has a line matching.
wait_line() {
  for _ in $(seq 600); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "timed out waiting for '$2' in $1" >&2
  cat "$1" >&2
  return 1
}

# start_serve DURABILITY NAME [CONFIG]: start serve on a fresh data dir (with
# --config CONFIG when given; the flags below override it); sets SERVE_PID,
# MLLP, HTTP.
start_serve() {
  local dir=$OUT/data-$2 log=$OUT/$2.serve.log cfg=()
  [[ -n ${3:-} ]] && cfg=(--config "$3")
  rm -rf "$dir"
  "$RG" serve "${cfg[@]}" --data "$dir" --mllp-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 \
    --nats-addr "${NATS_ADDR:-127.0.0.1:-1}" --log-format json --durability "$1" 2>"$log" &
  SERVE_PID=$!
  PIDS+=("$SERVE_PID")
  wait_line "$log" '"resultgate started"'
  MLLP=$(grep '"resultgate started"' "$log" | sed 's/.*"mllp":"\([^"]*\)".*/\1/')
  HTTP=$(grep '"resultgate started"' "$log" | sed 's/.*"http":"\([^"]*\)".*/\1/')
}

# stop_pid PID: SIGTERM and wait (bounded, 40 s).
stop_pid() {
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 400); do
    kill -0 "$1" 2>/dev/null || { wait "$1" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  echo "process $1 did not stop; killing" >&2
  kill -KILL "$1" 2>/dev/null || true
}

# cpu_ticks PID: user+system CPU time of PID in clock ticks (1/100 s).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# cpu_per_msg PID BEFORE COUNT: CPU µs per message since BEFORE ticks.
cpu_per_msg() { echo $(( ($(cpu_ticks "$1") - $2) * 10000 / $3 )); }

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

bench() { # bench ADDR COUNT OUTFILE
  "$RG" bench --addr "$1" --conns 8 --count "$2" --json "$FIXTURE" >"$3"
  cat "$3"
}

if [[ $SECTIONS == *a* || $SECTIONS == *b* ]]; then
  for r in $(seq "$ROUNDS"); do
    echo "== round $r: a) resultgate serve --durability os"
    start_serve os "a$r"
    t0=$(cpu_ticks "$SERVE_PID")
    bench "$MLLP" "$COUNT" "$OUT/a_serve_os_$r.json"
    echo "serve CPU µs/msg: $(cpu_per_msg "$SERVE_PID" "$t0" "$COUNT")" | tee "$OUT/a_cpu_$r.txt"
    stop_pid "$SERVE_PID"
    rm -rf "$OUT/data-a$r"
    echo "== round $r: b) simple-hl7 server (ACK only)"
    node "$ROOT/interop/ack-server.js" 0 127.0.0.1 >"$OUT/b$r.node.log" 2>&1 &
    NODE_PID=$!
    PIDS+=("$NODE_PID")
    wait_line "$OUT/b$r.node.log" listening
    ADDR=$(sed -n 's/.*"listening":"\([^"]*\)".*/\1/p' "$OUT/b$r.node.log")
    t0=$(cpu_ticks "$NODE_PID")
    bench "$ADDR" "$COUNT" "$OUT/b_simplehl7_$r.json"
    echo "simple-hl7 CPU µs/msg: $(cpu_per_msg "$NODE_PID" "$t0" "$COUNT")" | tee "$OUT/b_cpu_$r.txt"
    stop_pid "$NODE_PID"
  done
fi

if [[ $SECTIONS == *c* ]]; then
  for r in $(seq "$ROUNDS"); do
    echo "== round $r: c) raw JetStream sync-always publish, 8 publishers, $FSYNC_COUNT msgs"
    RESULTGATE_BENCH_DIR=$OUT "$OUT/cmd.test" -test.run '^$' -test.bench 'RawJetStreamPublish/fsync$' \
      -test.benchtime "${FSYNC_COUNT}x" -test.count 1 | tee "$OUT/c_raw_fsync_$r.txt"
    echo "== round $r: c) resultgate serve --durability fsync"
    start_serve fsync "c$r"
    bench "$MLLP" "$FSYNC_COUNT" "$OUT/c_serve_fsync_$r.json"
    stop_pid "$SERVE_PID"
    rm -rf "$OUT/data-c$r"
  done
fi

if [[ $SECTIONS == *d* ]]; then
  echo "== d) RSS during $RSS_COUNT messages (durability os), every ${RSS_EVERY}s, then ${RSS_TAIL}s after${RSS_CONFIG:+, --config $RSS_CONFIG}"
  if [[ -n $RSS_CONFIG ]]; then
    RSS_CONFIG=$(cd "$(dirname "$RSS_CONFIG")" && pwd)/$(basename "$RSS_CONFIG")
    "$RG" check-config "$RSS_CONFIG"
    cp "$RSS_CONFIG" "$OUT/d_config.yaml"
  fi
  start_serve os d "$RSS_CONFIG"
  # sample PHASE: one line of d_rss.tsv (seconds since the bench started, phase,
  # intake ACKed, classify processed, Go heap in use in kB, VmRSS in kB, 1-min load).
  sample() {
    local m acked processed heap
    m=$(curl -s "http://$HTTP/metrics" 2>/dev/null || true)
    acked=$(awk '/^resultgate_intake_acked_total / {print $2}' <<<"$m")
    processed=$(awk '/^resultgate_classify_processed_total[{ ]/ {n += $2} END {printf "%d", n}' <<<"$m")
    heap=$(awk '/^go_memstats_heap_inuse_bytes / {printf "%d", $2 / 1024}' <<<"$m")
    echo -e "$(($(date +%s) - t0))\t$1\t${acked:-?}\t${processed:-?}\t${heap:-?}\t$(rss_kb "$SERVE_PID")\t$(cut -d' ' -f1 /proc/loadavg)" | tee -a "$OUT/d_rss.tsv"
  }
  echo -e "seconds\tphase\tacked\tprocessed\theap_inuse_kb\tvmrss_kb\tload1" | tee "$OUT/d_rss.tsv"
  t0=$(date +%s)
  sample before
  "$RG" bench --addr "$MLLP" --conns 8 --count "$RSS_COUNT" --json "$FIXTURE" >"$OUT/d_bench.json" &
  BENCH_PID=$!
  PIDS+=("$BENCH_PID")
  while kill -0 "$BENCH_PID" 2>/dev/null; do
    sleep "$RSS_EVERY" # sampling interval, not synchronisation
    kill -0 "$BENCH_PID" 2>/dev/null || break
    sample bench
  done
  wait "$BENCH_PID" || true
  sample bench-end
  t1=$(date +%s)
  while (($(date +%s) - t1 < RSS_TAIL)); do
    sleep "$RSS_EVERY"
    sample after
  done
  echo "VmHWM_kb $(hwm_kb "$SERVE_PID")" | tee -a "$OUT/d_rss.tsv"
  cat "$OUT/d_bench.json"
  stop_pid "$SERVE_PID"
  rm -rf "$OUT/data-d"
fi

if [[ $SECTIONS == *e* ]]; then
  echo "== e) one message just under the 16 MiB maximum frame"
  big=$OUT/big.hl7
  size=$((16 * 1024 * 1024 - 4096))
  prefix=$'MSH|^~\\&|BIGLAB|BIGFAC|RG|HOSP|20260101120000||ORU^R01^ORU_R01|BIG-1|P|2.5.1\rPID|1||BIG1^^^HOSP^MR||BIG^PATIENT||19700101|F\rOBR|1|ORD1|FIL1|11529-5^Surgical path^LN|||20260101\rOBX|1|ED|11529-5^Report^LN||^application^pdf^Base64^'
  { printf "%s" "$prefix"; head -c $((size - ${#prefix} - 20)) /dev/zero | tr '\0' 'A'; printf '||||||F\r'; } >"$big"
  echo "message bytes: $(wc -c <"$big")"
  start_serve os e
  "$RG" send --addr "$MLLP" --quiet "$FIXTURE" # warm up: first message, stream created
  before_rss=$(rss_kb "$SERVE_PID")
  before_hwm=$(hwm_kb "$SERVE_PID")
  "$RG" send --addr "$MLLP" --ack-timeout 60s --quiet "$big"
  after_rss=$(rss_kb "$SERVE_PID")
  after_hwm=$(hwm_kb "$SERVE_PID")
  {
    echo "message_bytes $(wc -c <"$big")"
    echo "before_vmrss_kb $before_rss"
    echo "before_vmhwm_kb $before_hwm"
    echo "after_vmrss_kb $after_rss"
    echo "after_vmhwm_kb $after_hwm"
    echo "peak_increase_kb $((after_hwm - before_rss))"
  } | tee "$OUT/e_bigmsg.txt"
  stop_pid "$SERVE_PID"
  rm -rf "$OUT/data-e" "$big"
fi

if [[ $SECTIONS == *p* ]]; then
  # A fixed NATS port for the pause switch (serve logs no NATS address).
  P_NATS=127.0.0.1:${P_NATS_PORT:-14222}
  # p_serve DURABILITY STATE COUNT ROUND: serve with its pipeline STATE
  # (paused or running) under the bench; JSON and CPU µs/msg per round.
  p_serve() {
    NATS_ADDR=$P_NATS start_serve "$1" "p-$1-$2-$4"
    if [[ $2 == paused ]]; then
      RESULTGATE_PAUSE_NATS=nats://$P_NATS RESULTGATE_PAUSE_DATA="$OUT/data-p-$1-$2-$4" \
        "$OUT/cmd.test" -test.run '^TestPauseClassify$' -test.v -test.count 1 | grep PAUSE-CLASSIFY
    fi
    t0=$(cpu_ticks "$SERVE_PID")
    bench "$MLLP" "$3" "$OUT/p_$1_$2_$4.json"
    echo "serve $1 $2 CPU µs/msg: $(cpu_per_msg "$SERVE_PID" "$t0" "$3")" | tee "$OUT/p_cpu_$1_$2_$4.txt"
    stop_pid "$SERVE_PID"
    rm -rf "$OUT/data-p-$1-$2-$4"
  }
  for r in $(seq "$ROUNDS"); do
    echo "== round $r: p) os paused, simple-hl7, os running, fsync paused, raw fsync, fsync running"
    p_serve os paused "$P_COUNT" "$r"
    node "$ROOT/interop/ack-server.js" 0 127.0.0.1 >"$OUT/p$r.node.log" 2>&1 &
    NODE_PID=$!
    PIDS+=("$NODE_PID")
    wait_line "$OUT/p$r.node.log" listening
    ADDR=$(sed -n 's/.*"listening":"\([^"]*\)".*/\1/p' "$OUT/p$r.node.log")
    t0=$(cpu_ticks "$NODE_PID")
    bench "$ADDR" "$P_COUNT" "$OUT/p_simplehl7_$r.json"
    echo "simple-hl7 CPU µs/msg: $(cpu_per_msg "$NODE_PID" "$t0" "$P_COUNT")" | tee "$OUT/p_cpu_simplehl7_$r.txt"
    stop_pid "$NODE_PID"
    p_serve os running "$P_COUNT" "$r"
    p_serve fsync paused "$FSYNC_COUNT" "$r"
    RESULTGATE_BENCH_DIR=$OUT "$OUT/cmd.test" -test.run '^$' -test.bench 'RawJetStreamPublish/fsync$' \
      -test.benchtime "${FSYNC_COUNT}x" -test.count 1 | tee "$OUT/p_raw_fsync_$r.txt"
    p_serve fsync running "$FSYNC_COUNT" "$r"
  done
fi

if [[ ${PROFILE:-0} == 1 ]]; then
  echo "== CPU profile of the in-process intake (durability os, 8 conns, 50000 msgs)"
  RESULTGATE_BENCH_DIR=$OUT "$OUT/cmd.test" -test.run '^$' -test.bench 'ServeInProcess/os$' \
    -test.benchtime 50000x -test.count 1 -test.cpuprofile "$OUT/cpu.out" | tee "$OUT/profile_bench.txt"
  go tool pprof -top -nodecount 40 "$OUT/cmd.test" "$OUT/cpu.out" >"$OUT/cpu_top.txt" 2>/dev/null
  go tool pprof -top -cum -nodecount 60 "$OUT/cmd.test" "$OUT/cpu.out" >"$OUT/cpu_cum.txt" 2>/dev/null
  head -50 "$OUT/cpu_top.txt"
fi

echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt"

python3 - "$OUT" <<'EOF' | tee "$OUT/summary.txt"
import glob, json, os, re, statistics, sys
out = sys.argv[1]
def load(pat):
    res = {}
    for f in glob.glob(os.path.join(out, pat)):
        r = int(re.search(r'_(\d+)\.(json|txt)$', f).group(1))
        res[r] = f
    return res
def med(xs): return statistics.median(xs) if xs else float('nan')
def fmt(rs):
    keys = ['msg_per_sec', 'p50_ms', 'p90_ms', 'p99_ms', 'max_ms']
    return '  '.join(f"{k}={med([x[k] for x in rs]):.3f}" for k in keys)
a = {r: json.load(open(f)) for r, f in load('a_serve_os_*.json').items()}
b = {r: json.load(open(f)) for r, f in load('b_simplehl7_*.json').items()}
if a:
    for r in sorted(a): print(f"a round {r}: serve os        {a[r]['msg_per_sec']:.0f} msg/s p50 {a[r]['p50_ms']} p90 {a[r]['p90_ms']} p99 {a[r]['p99_ms']} max {a[r]['max_ms']} accepted {a[r]['accepted']}/{a[r]['sent']}")
    print("a median:", fmt(list(a.values())))
if b:
    for r in sorted(b): print(f"b round {r}: simple-hl7      {b[r]['msg_per_sec']:.0f} msg/s p50 {b[r]['p50_ms']} p90 {b[r]['p90_ms']} p99 {b[r]['p99_ms']} max {b[r]['max_ms']} accepted {b[r]['accepted']}/{b[r]['sent']}")
    print("b median:", fmt(list(b.values())))
    ratios = [a[r]['msg_per_sec'] / b[r]['msg_per_sec'] for r in sorted(set(a) & set(b))]
    print("a/b throughput ratio per round:", ' '.join(f"{x:.2f}" for x in ratios), f"median {med(ratios):.2f}")
for name, pat in (('serve', 'a_cpu_*.txt'), ('simple-hl7', 'b_cpu_*.txt')):
    xs = [int(open(f).read().split()[-1]) for f in load(pat).values()]
    if xs: print(f"{name} CPU µs/msg per round: {sorted(xs)} median {med(xs):.0f}")
craw = {}
for r, f in load('c_raw_fsync_*.txt').items():
    m = re.search(r'([\d.]+) msg/s', open(f).read())
    if m: craw[r] = float(m.group(1))
cs = {r: json.load(open(f)) for r, f in load('c_serve_fsync_*.json').items()}
if cs:
    for r in sorted(cs): print(f"c round {r}: raw JetStream fsync {craw.get(r, float('nan')):.0f} msg/s, serve fsync {cs[r]['msg_per_sec']:.0f} msg/s p50 {cs[r]['p50_ms']} p99 {cs[r]['p99_ms']}")
    ratios = [cs[r]['msg_per_sec'] / craw[r] for r in sorted(set(cs) & set(craw))]
    print(f"c median: raw {med(list(craw.values())):.0f} msg/s, serve {fmt(list(cs.values()))}")
    print("c serve/raw ratio per round:", ' '.join(f"{x:.2f}" for x in ratios), f"median {med(ratios):.2f}")
p = {}
for f in glob.glob(os.path.join(out, 'p_*_*.json')):
    m = re.search(r'p_(.+)_(\d+)\.json$', f)
    p.setdefault(m.group(1), {})[int(m.group(2))] = json.load(open(f))
praw = {}
for r, f in load('p_raw_fsync_*.txt').items():
    m = re.search(r'([\d.]+) msg/s', open(f).read())
    if m: praw[r] = float(m.group(1))
if p:
    base = p.get('simplehl7', {})
    for kind in ('os_paused', 'os_running', 'simplehl7', 'fsync_paused', 'fsync_running'):
        rs = p.get(kind, {})
        if not rs: continue
        for r in sorted(rs): print(f"p round {r}: {kind:14s} {rs[r]['msg_per_sec']:.0f} msg/s p50 {rs[r]['p50_ms']} p99 {rs[r]['p99_ms']} accepted {rs[r]['accepted']}/{rs[r]['sent']}")
        print(f"p {kind} median: {fmt(list(rs.values()))}")
        if kind != 'simplehl7' and base:
            ratios = [rs[r]['msg_per_sec'] / base[r]['msg_per_sec'] for r in sorted(set(rs) & set(base))]
            print(f"p {kind}/simple-hl7 ratio per round:", ' '.join(f"{x:.2f}" for x in ratios), f"median {med(ratios):.2f}")
        if kind.startswith('fsync') and praw:
            ratios = [rs[r]['msg_per_sec'] / praw[r] for r in sorted(set(rs) & set(praw))]
            print(f"p {kind}/raw fsync ratio per round:", ' '.join(f"{x:.2f}" for x in ratios), f"median {med(ratios):.2f} (raw median {med(list(praw.values())):.0f} msg/s)")
    for f in sorted(glob.glob(os.path.join(out, 'p_cpu_*.txt'))):
        print(os.path.basename(f), open(f).read().strip())
EOF
