#!/bin/bash
# Interleaved pairs of `bench cluster` runs: build A then B, B then A, ... (order swapped each
# pair), each run's JSON report, its load average and per-thread CPU (bench/threads.sh, sampled
# from THR_AT seconds after start for THR_S seconds) kept in OUT_DIR.
#   bash bench/pairs.sh OUT_DIR PAIRS SHAPE_NAME LABEL_A=MAIN_JS_A LABEL_B=MAIN_JS_B -- BENCH ARGS...
# LABEL=BENCH_MAIN_JS+VALIDATOR_MAIN_JS runs that build's bench against another build's validators
# (PARABFT_BENCH_VALIDATOR_MAIN), so a pair can compare validators under one bench.
out=$1; pairs=$2; shape=$3; a=$4; b=$5; shift 6; BARGS=("$@")
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
: "${THR_AT:=12}" "${THR_S:=10}"
run() {
  local label=${1%%=*} js=${1#*=} i=$2 vmain=
  if [[ $js == *+* ]]; then vmain=${js#*+}; js=${js%%+*}; fi
  local f="$out/$label-$shape-$i"
  uptime > "$f.load"
  PARABFT_BENCH_VALIDATOR_MAIN=${vmain:-$PARABFT_BENCH_VALIDATOR_MAIN} node "$js" bench cluster --validators 4 --no-write --json --quiet "${BARGS[@]}" > "$f.json" 2> "$f.err" &
  local pid=$!
  sleep "$THR_AT"; bash "$here/threads.sh" "$pid" "$THR_S" > "$f.thr" 2>/dev/null
  wait "$pid"; echo "rc $?" >> "$f.load"; uptime >> "$f.load"
}
for i in $(seq 1 "$pairs"); do
  if [ $((i % 2)) -eq 1 ]; then run "$a" "$i"; run "$b" "$i"; else run "$b" "$i"; run "$a" "$i"; fi
done
