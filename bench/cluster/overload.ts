// The overload measurement (issue 14: "overload at 2× saturation"): an open loop at a rate above
// what the cluster commits, whose client does what a real wallet does with a refusal: it does not
// retry the refused payment, and the sender's next payment takes the unused nonce. So the offered
// load stays what was asked for (retrying every refusal would multiply it past saturation), no
// sender ever leaves a nonce gap behind a refusal, and every admitted transaction must commit.
//
// Each send picks the next sender (round-robin) that has no submission awaiting its answer, signs
// a transfer with that sender's next nonce and submits it (SubmitTx). Admitted: the nonce is used
// and the block watcher times its finality from the scheduled send time. Refused: counted by its
// status ("RESOURCE_EXHAUSTED/OVERLOADED", ...). When every sender is awaiting an answer the send
// is counted as `clientBlocked` (the client could not offer it) instead of queueing in the client.
import { signTx, transferTx } from "../../src/client/node.js";
import { toHex } from "../../src/types/index.js";
import {
  buildTimeline,
  failureKey,
  newHistogram,
  type RunContext,
  recipient,
  recordMs,
  renderProgress,
  sleep,
  summarize,
} from "./load.js";
import { round3 } from "./stages.js";
import type { RunReport } from "./types.js";

/**
 * Refusals the node gives for its own state (backpressure, capacity, rate): the payment is
 * abandoned, the sender stays usable. Anything else (BAD_NONCE, a transport error) taints the
 * sender: its nonce may be out of step with the chain.
 */
const LOAD_REFUSALS: ReadonlySet<string> = new Set([
  "OVERLOADED",
  "MEMPOOL_FULL",
  "CONNECTION_RATE_LIMITED",
  "SENDER_RATE_LIMITED",
]);

/** Open loop at `rate` tx/s for `durationS` with refusals counted, never retried (see above). */
export async function runOverload(
  ctx: RunContext,
  rate: number,
  durationS: number,
  label: string,
): Promise<RunReport> {
  const total = Math.max(1, Math.round(rate * durationS));
  const senders = ctx.senders.map((s, i) => ({ s, i, busy: false })).filter((x) => !x.s.tainted);
  if (senders.length === 0) throw new Error("no usable senders left");
  const scheduled = new Float64Array(total);
  const committedAt = new Float64Array(total).fill(Number.NaN);
  const commitHeight = new Float64Array(total).fill(Number.NaN);
  const hashOf: (string | undefined)[] = new Array(total);
  const refused: Record<string, number> = {};
  const failures: Record<string, number> = {};
  const finality = newHistogram();
  const executed = newHistogram();
  const submitAck = newHistogram();
  const byHeight = new Map<number, number[]>();
  let admitted = 0;
  let answered = 0;
  let sent = 0;
  let clientBlocked = 0;
  let committedCount = 0;
  let executedCount = 0;
  let committedInWindow = 0;
  let maxLag = 0;
  let cursor = 0;
  const w = ctx.watcher;
  const executedAt = new Float64Array(total).fill(Number.NaN);
  const markExecuted = (i: number, at: number) => {
    if (!Number.isNaN(executedAt[i]!)) return;
    executedAt[i] = at;
    executedCount++;
    recordMs(executed, at - scheduled[i]!);
  };
  const untrackExecuted = w.trackExecuted(byHeight, markExecuted);

  const t0 = performance.now() + 20;
  const tEnd = t0 + durationS * 1000;
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < total; i++) scheduled[i] = t0 + (i * 1000) / rate;

  const nextFree = () => {
    for (let k = 0; k < senders.length; k++) {
      const x = senders[(cursor + k) % senders.length]!;
      if (!x.busy && !x.s.tainted) {
        cursor = (cursor + k + 1) % senders.length;
        return x;
      }
    }
    return null;
  };

  const send = (i: number) => {
    const x = nextFree();
    if (x === null) {
      clientBlocked++;
      return;
    }
    x.busy = true;
    sent++;
    const s = x.s;
    const p = signTx(
      transferTx(
        { chainId: ctx.chainId, sender: s.signer.publicKey, nonce: s.nextNonce },
        recipient(ctx.recipientCounter++),
        1n,
      ),
      s.signer,
    );
    const hex = toHex(p.hash);
    hashOf[i] = hex;
    // Registered before the submit: the block can arrive before the admission answer.
    w.pending.set(hex, (height, at) => {
      committedAt[i] = at;
      commitHeight[i] = height;
      committedCount++;
      if (at <= tEnd) committedInWindow++;
      recordMs(finality, at - scheduled[i]!);
      ctx.committedLog.push({ hash: p.hash, height });
      if (w.executedHeight >= height) markExecuted(i, at);
      else {
        const list = byHeight.get(height);
        if (list) list.push(i);
        else byHeight.set(height, [i]);
      }
    });
    const conn = ctx.conns[x.i % ctx.conns.length]!;
    conn
      .run(() => conn.client.submitTx(p.tx))
      .then(
        () => {
          s.nextNonce++;
          admitted++;
          recordMs(submitAck, performance.now() - scheduled[i]!);
        },
        (err: unknown) => {
          w.pending.delete(hex);
          hashOf[i] = undefined;
          const key = failureKey(err);
          if (LOAD_REFUSALS.has(key.split("/")[1] ?? "")) refused[key] = (refused[key] ?? 0) + 1;
          else {
            failures[key] = (failures[key] ?? 0) + 1;
            s.tainted = true;
          }
        },
      )
      .finally(() => {
        x.busy = false;
        answered++;
      });
  };

  let next = 0;
  let lastDraw = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      while (next < total && scheduled[next]! <= now) {
        maxLag = Math.max(maxLag, now - scheduled[next]!);
        send(next++);
      }
      if (now - lastDraw > 250) {
        lastDraw = now;
        const el = Math.max(0, (now - t0) / 1000);
        const refusedN = Object.values(refused).reduce((a, b) => a + b, 0);
        renderProgress(
          ctx,
          label,
          el,
          durationS,
          `sent ${sent} admitted ${admitted} refused ${refusedN} committed ${committedCount}`,
        );
      }
      if (next >= total || ctx.signal?.aborted) resolve();
      else setTimeout(tick, 1);
    };
    setTimeout(tick, Math.max(0, t0 - performance.now()));
  });

  // Drain: every admitted transaction should commit (nothing admitted may be lost), bounded.
  const drainUntil = performance.now() + ctx.drainTimeoutS * 1000;
  while (performance.now() < drainUntil && !ctx.signal?.aborted) {
    if (answered >= sent && committedCount >= admitted && executedCount >= committedCount) break;
    renderProgress(ctx, label, durationS, durationS, `draining: committed ${committedCount}/${admitted}`);
    await sleep(50);
  }
  if (ctx.progress && process.stderr.isTTY) process.stderr.write("\n");
  const cpu = process.cpuUsage(cpu0);
  const wallMs = Math.max(1, performance.now() - t0);
  untrackExecuted();
  for (let i = 0; i < total; i++) {
    const hex = hashOf[i];
    if (hex !== undefined && Number.isNaN(committedAt[i]!)) w.pending.delete(hex);
  }
  const heights = new Set<number>();
  for (let i = 0; i < total; i++) if (!Number.isNaN(commitHeight[i]!)) heights.add(commitHeight[i]!);
  // Commit throughput while the load lasted: what the cluster sustains under overload.
  const achievedTps = committedInWindow / durationS;
  return {
    mode: "overload",
    offeredRate: rate,
    durationS,
    scheduled: total,
    submitted: admitted,
    submitFailures: failures,
    refused,
    clientBlocked,
    committed: committedCount,
    committedInWindow,
    executed: executedCount,
    uncommitted: admitted - committedCount,
    achievedTps: Math.round(achievedTps * 10) / 10,
    ratioToClusterCeiling: round3(achievedTps / Math.max(1, ctx.ceiling.clusterCeilingPerSec)),
    ratioToMachineCeiling: round3(achievedTps / Math.max(1, ctx.ceiling.allCoresPerSec)),
    finalityMs: summarize(finality),
    executedMs: summarize(executed),
    submitAckMs: summarize(submitAck),
    generatorMaxLagMs: Math.round(maxLag * 100) / 100,
    generatorCpuPercent: Math.round(((cpu.user + cpu.system) / 1000 / wallMs) * 1000) / 10,
    blocks: heights.size,
    timeline: buildTimeline(
      t0,
      Math.ceil(durationS + ctx.drainTimeoutS),
      durationS,
      scheduled,
      committedAt,
      (i) => committedAt[i]! - scheduled[i]!,
    ),
  };
}
