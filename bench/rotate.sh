#!/bin/bash
# `bench cluster` runs of several validator builds under one bench, in rotated order (round r
# starts at build r), each run's JSON report and load average kept in OUT_DIR as LABEL-ROUND.*:
#   bash bench/rotate.sh OUT_DIR ROUNDS BENCH_MAIN_JS LABEL=VALIDATOR_MAIN_JS ... -- BENCH ARGS...
# bench/pairs.sh is the two-build form with per-thread CPU; this one bisects between variants.
out=$1; rounds=$2; bench=$3; shift 3
labels=(); while [ $# -gt 0 ] && [ "$1" != "--" ]; do labels+=("$1"); shift; done; shift
mkdir -p "$out"; n=${#labels[@]}
for r in $(seq 1 "$rounds"); do
  for k in $(seq 0 $((n - 1))); do
    l=${labels[$(((k + r - 1) % n))]}; f="$out/${l%%=*}-$r"
    uptime > "$f.load"
    PARABFT_BENCH_VALIDATOR_MAIN=${l#*=} node "$bench" bench cluster --validators 4 --no-write --json --quiet "$@" > "$f.json" 2> "$f.err"
    echo "rc $?" >> "$f.load"; uptime >> "$f.load"
  done
done
