#!/usr/bin/env bash
# make cluster-up VALIDATORS=N / make cluster-down: N validators in containers with docker-compose.
#   deploy/cluster.sh up N DIR     writes a testnet for containers into DIR (parabft testnet --docker,
#                                  chain parameters PRESET=default (or minimal: 300 ms view timeout),
#                                  64 funded accounts in DIR/accounts, image IMAGE, default
#                                  parabft:local) unless DIR already holds one,
#                                  starts DIR/compose.yaml (project "parabft") and waits until every
#                                  validator's API answers on 127.0.0.1
#   deploy/cluster.sh down N DIR   stops the containers, removes their volumes and DIR
# Needs a Docker engine (deploy/engine.sh start) and the image (make image); installs
# docker-compose with apt-get when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
cmd=${1:?usage: cluster.sh up|down N DIR}
n=${2:-4}
dir=${3:-deploy/.cluster}
preset=${PRESET:-default}
image=${IMAGE:-parabft:local}
if ! command -v docker-compose >/dev/null 2>&1; then
  echo "cluster: installing docker-compose with apt-get" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >&2
fi
compose() { docker-compose -p parabft -f "$dir/compose.yaml" "$@"; }

case "$cmd" in
  up)
    if [ -f "$dir/testnet.json" ] && [ "$(grep -c '"peer": "node' "$dir/testnet.json")" != "$n" ]; then
      echo "cluster: $dir holds a testnet of another size; run make cluster-down first" >&2
      exit 1
    fi
    if [ ! -f "$dir/testnet.json" ]; then
      node bin/parabft.js testnet --docker --validators "$n" --accounts 64 --preset "$preset" --image "$image" --out "$dir" >/dev/null
    fi
    compose up -d
    for i in $(seq 0 $((n - 1))); do
      api="127.0.0.1:$((26657 + 10 * i))"
      deadline=$((SECONDS + 120))
      until node bin/parabft.js query status --api "$api" >/dev/null 2>&1; do
        if [ "$SECONDS" -ge "$deadline" ]; then
          echo "cluster: validator $i ($api) did not answer in 120 s" >&2
          compose logs --tail 20 "node$i" >&2
          exit 1
        fi
        sleep 1
      done
    done
    apis=$(for i in $(seq 0 $((n - 1))); do printf '127.0.0.1:%d,' $((26657 + 10 * i)); done)
    echo "cluster: $n validators up; API ${apis%,}; metrics on API port + 3; keys in $dir/accounts"
    ;;
  down)
    if [ -f "$dir/compose.yaml" ]; then compose down -v --remove-orphans; fi
    rm -rf "$dir"
    ;;
  *)
    echo "usage: cluster.sh up|down N DIR" >&2
    exit 2
    ;;
esac
