// Preload for `bench cluster` validators: counts node:crypto Ed25519 verify/sign calls per thread
// and writes them to $PARABFT_CRYPTO_COUNT_DIR/<pid>-<threadId>.json every second and at exit.
//   PARABFT_CRYPTO_COUNT_DIR=/tmp/cc PARABFT_BENCH_NODE_ARGS="--import=$PWD/bench/cryptoCount.mjs" \
//     node dist/src/cli/main.js bench cluster ...
// Divide by the run's heights (blocks) to get verifies and signs per height per validator.
import crypto from "node:crypto";
import { writeFileSync } from "node:fs";
import { syncBuiltinESMExports } from "node:module";
import { threadId } from "node:worker_threads";

const dir = process.env.PARABFT_CRYPTO_COUNT_DIR;
if (dir) {
  const counts = { verify: 0, sign: 0 };
  const verify = crypto.verify;
  const sign = crypto.sign;
  crypto.verify = function (...args) {
    counts.verify++;
    return verify.apply(this, args);
  };
  crypto.sign = function (...args) {
    counts.sign++;
    return sign.apply(this, args);
  };
  syncBuiltinESMExports();
  const file = `${dir}/${process.pid}-${threadId}.json`;
  const flush = () =>
    writeFileSync(
      file,
      JSON.stringify({ pid: process.pid, threadId, argv: process.argv.slice(2, 4), ...counts }),
    );
  setInterval(flush, 1000).unref();
  process.on("exit", flush);
}
