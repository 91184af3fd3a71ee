#!/bin/bash
# `bench cluster` runs of several variants under one bench, in rotated order (round r starts at
# variant r), each run's JSON report and load average kept in OUT_DIR as LABEL-ROUND.*:
#   bash bench/rotate.sh OUT_DIR ROUNDS BENCH_MAIN_JS VARIANT ... -- BENCH ARGS...
# A variant is LABEL=VALIDATOR_MAIN_JS (another build's validators under this bench) or
# LABEL+=ARGS (this build's validators, with ARGS added, e.g. 'b500+=--consensus maxBlockTxs=500').
# bench/pairs.sh is the two-build form with per-thread CPU; this one bisects between variants.
out=$1; rounds=$2; bench=$3; shift 3
labels=(); while [ $# -gt 0 ] && [ "$1" != "--" ]; do labels+=("$1"); shift; done; shift
mkdir -p "$out"; n=${#labels[@]}
for r in $(seq 1 "$rounds"); do
  for k in $(seq 0 $((n - 1))); do
    v=${labels[$(((k + r - 1) % n))]}
    if [[ $v == *+=* ]]; then l=${v%%+=*}; extra=${v#*+=}; main=""
    else l=${v%%=*}; extra=""; main=${v#*=}; fi
    f="$out/$l-$r"
    uptime > "$f.load"
    # shellcheck disable=SC2086 # ARGS split into words on purpose
    PARABFT_BENCH_VALIDATOR_MAIN=$main node "$bench" bench cluster --validators 4 --no-write --json --quiet $extra "$@" > "$f.json" 2> "$f.err"
    echo "rc $?" >> "$f.load"; uptime >> "$f.load"
  done
done
