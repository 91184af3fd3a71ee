// The overload measurement (issue 14: "overload at 2× saturation"): an open loop at a rate above
// what the cluster commits, whose client does what a real wallet does with a refusal: it does not
// retry the refused payment, and the sender's next payment takes the unused nonce. So the offered
// load stays what was asked for (retrying every refusal would multiply it past saturation), no
// sender ever leaves a nonce gap behind a refusal, and every admitted transaction must commit.
//
// Each send picks the next sender (round-robin) that has no submission awaiting its answer and
// submits the transfer its signing threads prepared for that sender's next nonce (SubmitTx, or a
// SubmitTxs batch: submitter.ts). Admitted: the nonce is used and the block watcher times its
// finality from the scheduled send time. Refused: counted by its status
// ("RESOURCE_EXHAUSTED/OVERLOADED", ...). Either way the sender's next transfer (the next nonce,
// or a fresh payment with the unused one) is signed off the pacing thread (signPool.ts) while
// other senders take the sends. When no sender is free the send is counted as `clientBlocked`
// (the client could not offer it) instead of queueing in the client.
import { monitorEventLoopDelay } from "node:perf_hooks";
import { failureKey, newHistogram, type RunContext, recordMs, summarize } from "./load.js";
import type { SignedTransfer, SignJob } from "./signPool.js";
import { Slots } from "./slots.js";
import { type TimedScrape, timedScrape, validatorWindow } from "./stages.js";
import { explainStuck, type Uncommitted } from "./stuck.js";
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

/**
 * Sends per turn of the event loop while the generator catches up: a late client (its own event
 * loop stalled on a busy box) would otherwise sign and submit every overdue slot in one
 * synchronous burst, before handling the answers already waiting on its sockets, and count sends
 * as "not sent" for senders whose answers had arrived.
 */
const SEND_BURST = 16;

/** Open loop at `rate` tx/s for `durationS` with refusals counted, never retried (see above). */
export async function runOverload(
  ctx: RunContext,
  rate: number,
  durationS: number,
  label: string,
): Promise<RunReport> {
  type Slot = { s: (typeof ctx.senders)[number]; i: number; busy: boolean; ready: SignedTransfer | null };
  const senders: Slot[] = ctx.senders
    .map((s, i): Slot => ({ s, i, busy: false, ready: null }))
    .filter((x) => !x.s.tainted);
  if (senders.length === 0) throw new Error("no usable senders left");
  // Every sender's first transfer, signed before the schedule starts.
  const first = await ctx.signPool.sign(
    senders.map((x) => ({ sender: x.i, nonce: x.s.nextNonce, recipient: ctx.recipientCounter++ })),
  );
  senders.forEach((x, k) => {
    x.ready = first[k]!;
  });
  // A sender whose transfer was answered gets its next one signed; requests are gathered for a
  // couple of milliseconds and sent to the signing threads together.
  let toSign: Slot[] = [];
  let signTimer: NodeJS.Timeout | null = null;
  const signQueued = () => {
    signTimer = null;
    const batch = toSign;
    toSign = [];
    const jobs: SignJob[] = batch.map((x) => ({
      sender: x.i,
      nonce: x.s.nextNonce,
      recipient: ctx.recipientCounter++,
    }));
    void ctx.signPool.sign(jobs).then((signed) => {
      batch.forEach((x, k) => {
        x.ready = signed[k]!;
      });
    });
  };
  const resign = (x: Slot) => {
    toSign.push(x);
    if (signTimer === null) signTimer = setTimeout(signQueued, 2);
  };
  const slots = new Slots(ctx, rate, durationS);
  const { total, scheduled } = slots;
  const hashOf: (string | undefined)[] = new Array(total);
  // Who sent each admitted slot, with which nonce, through which connection, and when it was
  // answered: the diagnosis of anything admitted that does not commit (stuck.ts).
  const senderOf = new Int32Array(total).fill(-1);
  const nonceOf: bigint[] = new Array(total);
  const connOf = new Int32Array(total).fill(-1);
  const admittedAt = new Float64Array(total).fill(Number.NaN);
  const refused: Record<string, number> = {};
  const failures: Record<string, number> = {};
  const submitAck = newHistogram();
  let admitted = 0;
  let answered = 0;
  let sent = 0;
  let clientBlocked = 0;
  let cursor = 0;
  const w = ctx.watcher;
  const cpu0 = process.cpuUsage();
  const calls0 = ctx.submitter.calls;
  // Why a send finds every sender busy: the client's lateness, the round trip, its own stalls.
  const sendLag = newHistogram();
  const roundTrip = newHistogram();
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  const notSentBySecond = new Array<number>(Math.ceil(durationS) + 1).fill(0);
  let outstandingSum = 0;
  let outstandingMax = 0;
  let outstandingSamples = 0;

  const nextFree = () => {
    for (let k = 0; k < senders.length; k++) {
      const x = senders[(cursor + k) % senders.length]!;
      if (!x.busy && x.ready !== null && !x.s.tainted) {
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
      const second = Math.floor((scheduled[i]! - slots.t0) / 1000);
      notSentBySecond[Math.min(notSentBySecond.length - 1, Math.max(0, second))]!++;
      return;
    }
    x.busy = true;
    sent++;
    const s = x.s;
    const p = x.ready!;
    x.ready = null;
    const hex = p.hex;
    hashOf[i] = hex;
    senderOf[i] = x.i;
    nonceOf[i] = s.nextNonce;
    // Watched before the submit: the block can arrive before the admission answer.
    slots.watch(i, p.hash, hex);
    const sentAt = performance.now();
    recordMs(sendLag, sentAt - scheduled[i]!);
    ctx.submitter
      .submit(p.tx, x.i)
      .then(
        (conn) => {
          s.nextNonce++;
          admitted++;
          connOf[i] = conn;
          admittedAt[i] = performance.now();
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
        recordMs(roundTrip, performance.now() - sentAt);
        if (!s.tainted) resign(x);
      });
  };
  const sendSampled = (i: number) => {
    send(i);
    const outstanding = sent - answered;
    outstandingSum += outstanding;
    outstandingSamples++;
    if (outstanding > outstandingMax) outstandingMax = outstanding;
  };

  // The validators' own counters over the load window: scraped as its first send is due and as
  // its last one went out (the client's figure below is what its block stream saw meanwhile).
  const windowStart = new Promise<TimedScrape>((resolve) => {
    setTimeout(() => resolve(timedScrape(ctx.metricsAddrs)), Math.max(0, slots.t0 - performance.now()));
  });
  loopDelay.enable();
  const maxLag = await slots.run(
    label,
    durationS,
    sendSampled,
    () => {
      const refusedN = Object.values(refused).reduce((a, b) => a + b, 0);
      return `sent ${sent} admitted ${admitted} refused ${refusedN} committed ${slots.committed}`;
    },
    SEND_BURST,
  );
  ctx.submitter.flush();

  loopDelay.disable();
  const windowEnd = ctx.metricsAddrs.length > 0 ? await timedScrape(ctx.metricsAddrs) : null;
  const windowBegan = await windowStart;
  // Drain: every admitted transaction should commit (nothing admitted may be lost), bounded.
  await slots.drain(
    label,
    durationS,
    () => answered >= sent && slots.committed >= admitted && slots.executedCount >= slots.committed,
    () => `draining: committed ${slots.committed}/${admitted}`,
  );
  const loopMs = (ns: number) => Math.round(ns / 1e4) / 100;
  // After the drain: every send has its answer.
  const answerTimes = {
    sendLagMs: summarize(sendLag),
    roundTripMs: summarize(roundTrip),
    clientLoopDelayMs: {
      p50: loopMs(loopDelay.percentile(50)),
      p99: loopMs(loopDelay.percentile(99)),
      max: loopMs(loopDelay.max),
    },
    outstandingMean: outstandingSamples > 0 ? Math.round(outstandingSum / outstandingSamples) : 0,
    outstandingMax,
    notSentBySecond,
  };
  // Commit throughput while the load lasted: what the cluster sustains under overload.
  const report = slots.report(slots.committedInWindow / durationS, durationS, submitAck, maxLag, cpu0);
  slots.close();
  for (let i = 0; i < total; i++) {
    const hex = hashOf[i];
    if (hex !== undefined && !slots.isCommitted(i)) w.pending.delete(hex);
  }
  const nodes = windowEnd === null ? null : validatorWindow(windowBegan, windowEnd);
  const left: Uncommitted[] = [];
  for (let i = 0; i < total; i++)
    if (!Number.isNaN(admittedAt[i]!) && !slots.isCommitted(i))
      left.push({
        sender: senderOf[i]!,
        nonce: nonceOf[i]!,
        conn: connOf[i]!,
        admittedAtS: (admittedAt[i]! - slots.t0) / 1000,
      });
  const stuck = await explainStuck(ctx, left);
  return {
    ...report,
    ...(nodes !== null ? { validatorWindow: nodes } : {}),
    mode: "overload",
    offeredRate: rate,
    durationS,
    scheduled: total,
    submitted: admitted,
    submitCalls: ctx.submitter.calls - calls0,
    submitFailures: failures,
    refused,
    clientBlocked,
    answerTimes,
    uncommitted: admitted - slots.committed,
    ...(stuck ? { stuck } : {}),
  };
}
