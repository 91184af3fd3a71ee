// PARABFT_TRACE (with log level debug): per-transaction trace points of the path before a
// proposal (issue 14, p24): the entry node's API admission and the gossip hop to the primary.
// bench/cluster/txStages.ts joins them with the bench's per-transaction log by tx id (the first
// TRACE_ID_HEX hex digits of the tx hash). Off unless the variable is "1": nothing is hashed or
// logged for it then.
import type { Logger } from "../logger/index.js";
import type { BatchResult } from "../mempool/index.js";

export { TRACE } from "../logger/index.js";
/** Hex digits of a tx hash that name it in a trace line (collisions are negligible per run). */
export const TRACE_ID_HEX = 12;

/** Logs the ids of a batch's admitted transactions and when their admission began (`at0`, wall ms). */
export function traceAdmitted(
  log: Logger,
  msg: string,
  at0: number,
  results: readonly BatchResult[],
  from?: number,
): void {
  const txs: string[] = [];
  for (const r of results) if (r.ok) txs.push(r.hashHex.slice(0, TRACE_ID_HEX));
  log.debug({ at0, from, n: results.length, txs }, msg);
}
