#!/bin/sh
# Runs one validator from the home mounted at $PARABFT_HOME (written by `parabft testnet`: config,
# genesis, keys, signing state; TLS material too once the testnet writes it). PARABFT_* variables
# override config fields (docs/CONFIG.md); the image sets the listen addresses to 0.0.0.0.
#   PARABFT_INDEX_FROM_HOSTNAME=1   take the validator index from the hostname's trailing number
#                                   (Kubernetes StatefulSet pods are named <set>-<ordinal>).
#   PARABFT_HOME_SOURCE=DIR         when $PARABFT_HOME has no config.json yet, copy DIR into it
#                                   first (seeding an empty volume from a read-only mount).
set -eu
home=${PARABFT_HOME:-/home/parabft}
if [ "${PARABFT_INDEX_FROM_HOSTNAME:-}" = "1" ]; then
  ordinal=$(hostname | sed -n 's/.*-\([0-9][0-9]*\)$/\1/p')
  [ -n "$ordinal" ] || { echo "entrypoint: hostname $(hostname) has no -<ordinal> suffix" >&2; exit 2; }
  export PARABFT_VALIDATOR_INDEX="$ordinal"
fi
if [ -n "${PARABFT_HOME_SOURCE:-}" ] && [ ! -f "$home/config.json" ]; then
  cp -r "$PARABFT_HOME_SOURCE"/. "$home"/
  chmod 700 "$home"
fi
if [ "$#" -gt 0 ] && [ "$1" != "start" ]; then exec node /app/bin/parabft.js "$@"; fi
[ "$#" -gt 0 ] && shift
exec node /app/bin/parabft.js start --home "$home" "$@"
