#!/bin/sh
# roles_measure.sh RG OUT [COUNT] [ROUNDS]: resultgate split by role into four
# processes on one machine, CPU per message of each role.
#   A  serve --roles intake, embedded NATS (JetStream, durability os), no traffic:
#      its CPU is the NATS server's
#   B  serve --roles intake  --nats-url A   (takes the MLLP load)
#   C  serve --roles pipeline --nats-url A  (classify, holds, feed)
#   D  serve --roles api     --nats-url A   (hold view follows the holds bucket)
# Per round: COUNT distinct messages (roles_gen.py: 80% labs, 20% pathology/imaging held
# by the Kentucky preset) sent by `resultgate bench --conns 8 --processing-id P`
# to B; the round ends when C has classified them all. Reported per process:
# utime+stime from /proc/PID/stat over the round, in µs per message.
# INTAKE_ONLY=1 starts A and B only (no pipeline, no API): the NATS server's
# cost of the intake alone; the round ends when the bench does.
set -eu
INTAKE_ONLY=${INTAKE_ONLY:-0}
RG=$1; OUT=$2; N=${3:-20000}; ROUNDS=${4:-3}
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=${ROOT:-$(dirname "$HERE")}
mkdir -p "$OUT"; P=$((20000 + $$ % 20000))
cat >"$OUT/site.yaml" <<Y
durability: os
nats:
  url: nats://127.0.0.1:$P
intake:
  partition_key_file: $OUT/dA/partition.key
policy:
  time_zone: America/New_York
  jurisdiction: US-KY
  jurisdictions:
    US-KY:
      statute: US-KY-KRS-333.152
Y
pids=""
cleanup() { for p in $pids; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
ready() { i=0; until curl -sf "http://127.0.0.1:$1/readyz" >/dev/null; do i=$((i+1)); [ $i -gt 300 ] && { echo "port $1 not ready" >&2; exit 1; }; sleep 0.1; done; }
"$RG" serve --roles intake --data "$OUT/dA" --nats-addr 127.0.0.1:$P --mllp-addr 127.0.0.1:0 \
  --http-addr 127.0.0.1:$((P+1)) --durability os --log-level warn 2>"$OUT/A.log" & A=$!; pids="$A"
ready $((P+1))
# The embedded server admits only its own users: the other instances use A's
# service seed.
CREDS="$OUT/dA/nats/service.nk"
"$RG" serve --config "$OUT/site.yaml" --nats-creds "$CREDS" --roles intake --data "$OUT/dB" --mllp-addr 127.0.0.1:$((P+5)) \
  --http-addr 127.0.0.1:$((P+2)) --log-level warn 2>"$OUT/B.log" & B=$!; pids="$pids $B"
C=$B; D=$B # INTAKE_ONLY: stand-ins, their figures are not printed
if [ "$INTAKE_ONLY" != 1 ]; then
"$RG" serve --config "$OUT/site.yaml" --nats-creds "$CREDS" --roles pipeline --data "$OUT/dC" \
  --http-addr 127.0.0.1:$((P+3)) --log-level warn 2>"$OUT/C.log" & C=$!; pids="$pids $C"
"$RG" serve --config "$OUT/site.yaml" --nats-creds "$CREDS" --roles api --data "$OUT/dD" \
  --http-addr 127.0.0.1:$((P+4)) --log-level warn 2>"$OUT/D.log" & D=$!; pids="$pids $D"
ready $((P+3)); ready $((P+4))
fi
ready $((P+2))
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
acked() { curl -s "http://127.0.0.1:$((P+3))/metrics" | awk '/^resultgate_classify_processed_total\{outcome="acked"\}/{print $2+0}' ; }
TCK=$(getconf CLK_TCK); done0=0
for r in $(seq 1 "$ROUNDS"); do
  python3 "$HERE/roles_gen.py" "$ROOT/testdata/bench" "$N" "R$r$$" >"$OUT/msgs$r.hl7"
  la0=$(cut -d' ' -f1-3 /proc/loadavg)
  a0=$(cpu $A); b0=$(cpu $B); c0=$(cpu $C); d0=$(cpu $D); t0=$(date +%s.%N)
  "$RG" bench --addr 127.0.0.1:$((P+5)) --conns 8 --count "$N" --processing-id P --json "$OUT/msgs$r.hl7" >"$OUT/bench$r.json"
  tb=$(date +%s.%N)
  want=$((done0 + N))
  [ "$INTAKE_ONLY" = 1 ] || until [ "$(acked || echo 0)" -ge "$want" ] 2>/dev/null; do sleep 0.1; done
  t1=$(date +%s.%N); done0=$want
  a1=$(cpu $A); b1=$(cpu $B); c1=$(cpu $C); d1=$(cpu $D); la1=$(cut -d' ' -f1-3 /proc/loadavg)
  awk -v r=$r -v n=$N -v t=$TCK -v a=$((a1-a0)) -v b=$((b1-b0)) -v c=$((c1-c0)) -v d=$((d1-d0)) \
      -v tb="$tb" -v t0="$t0" -v t1="$t1" -v la0="$la0" -v la1="$la1" -v io="$([ "$INTAKE_ONLY" = 1 ] && echo 1 || echo 0)" 'BEGIN{
    us=1e6/t/n
    printf "round %d: %d msgs, intake ACKed in %.1fs (%.0f msg/s)", r, n, tb-t0, n/(tb-t0)
    if (!io) printf ", all classified after %.1fs (%.0f msg/s)", t1-t0, n/(t1-t0)
    printf "\n"
    if (io) printf "  CPU us/msg: intake(B) %.0f  nats(A) %.0f   => msg/s per core: intake %.0f nats %.0f  load %s -> %s\n", b*us, a*us, 1e6/(b*us), 1e6/(a*us), la0, la1
    else printf "  CPU us/msg: intake(B) %.0f  pipeline(C) %.0f  nats(A) %.0f  api(D) %.0f   => msg/s per core: intake %.0f pipeline %.0f nats %.0f  load %s -> %s\n", b*us, c*us, a*us, d*us, 1e6/(b*us), 1e6/(c*us), 1e6/(a*us), la0, la1 }'
  cat "$OUT/bench$r.json"
done
