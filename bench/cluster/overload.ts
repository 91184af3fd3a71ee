// The overload measurement (issue 14: "overload at 2× saturation"): an open loop at a rate above
// what the cluster commits, whose client does what a real wallet does with a refusal: it does not
// retry the refused payment, and the sender's next payment takes the unused nonce. So the offered
// load stays what was asked for (retrying every refusal would multiply it past saturation), no
// sender ever leaves a nonce gap behind a refusal, and every admitted transaction must commit.
//
// Each send picks the next sender (round-robin) that has no submission awaiting its answer and
// submits that sender's next transfer (SubmitTx, or a SubmitTxs batch: submitter.ts). Admitted: the
// nonce is used and the block watcher times its finality from the scheduled send time. Refused:
// counted by its status ("RESOURCE_EXHAUSTED/OVERLOADED", ...), and the same signed transfer stays
// the sender's next payment (its nonce is unused; OVERLOADED, every refusal at 2× saturation, is
// decided before the account read and the signature, so a resend costs the validators what a fresh
// payment would; a MEMPOOL_FULL or rate-limit refusal comes after the signature check, whose
// verdict cache would make its resend a little cheaper). The transfers are signed
// before the schedule starts (each sender's next nonces, for about what saturation admits), as the
// probe's open loop signs its whole run: at 2× saturation a client signing every send during the
// load took ~34 % of a core from the validators on this 2-core box (~12-15 % in the probe steps;
// bench/results/l20-notes.md). A sender that uses up its signed transfers gets more signed by the
// signing threads during the load. When no sender is free the send is counted as `clientBlocked`
// (the client could not offer it) instead of queueing in the client.
import { monitorEventLoopDelay } from "node:perf_hooks";
import { failureKey, newHistogram, type RunContext, recordMs, summarize } from "./load.js";
import type { SignedTransfer, SignJob } from "./signPool.js";
import { Slots } from "./slots.js";
import { type TimedScrape, timedScrape, validatorWindow } from "./stages.js";
import { explainStuck, type Uncommitted } from "./stuck.js";
import { OVERLOAD_BATCH_DELAY_MS } from "./submitter.js";
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

/**
 * Transfers signed per sender before the load: this share of the offered load's sends (2×
 * saturation admits about half), at least PRESIGN_MIN each.
 */
const PRESIGN_SHARE = 0.5;
const PRESIGN_MIN = 4;
/** A sender with this many signed transfers left or fewer gets REFILL more signed during the load. */
const REFILL_BELOW = 2;
const REFILL = 8;

/** Open loop at `rate` tx/s for `durationS` with refusals counted, never retried (see above). */
export async function runOverload(
  ctx: RunContext,
  rate: number,
  durationS: number,
  label: string,
): Promise<RunReport> {
  // Each sender's next transfers (consecutive nonces from its next one), signed ahead: the head
  // is its next payment. Admitted, the head is used; refused, the head stays the sender's next
  // payment (the same signed bytes at its next send), so the client signs only what is admitted.
  type Slot = {
    s: (typeof ctx.senders)[number];
    i: number;
    busy: boolean;
    queue: SignedTransfer[];
    /** The nonce after the last transfer signed (queued or asked of the signing threads). */
    signedTo: bigint;
    refilling: boolean;
  };
  const senders: Slot[] = ctx.senders
    .map((s, i): Slot => ({ s, i, busy: false, queue: [], signedTo: s.nextNonce, refilling: false }))
    .filter((x) => !x.s.tainted);
  if (senders.length === 0) throw new Error("no usable senders left");
  // Signed before the schedule starts, as the open loop's probe steps sign their whole run: what
  // the load admits at about saturation (half of 2× saturation), plus a margin; a sender that
  // uses up its transfers gets more signed during the load (below).
  const depth = Math.max(
    PRESIGN_MIN,
    Math.ceil((PRESIGN_SHARE * rate * durationS) / senders.length) + PRESIGN_MIN,
  );
  const jobsFor = (x: Slot, n: number): SignJob[] => {
    const jobs: SignJob[] = [];
    for (let k = 0; k < n; k++) {
      jobs.push({ sender: x.i, nonce: x.signedTo, recipient: ctx.recipientCounter++ });
      x.signedTo++;
    }
    return jobs;
  };
  const first = await ctx.signPool.sign(senders.flatMap((x) => jobsFor(x, depth)));
  senders.forEach((x, k) => {
    x.queue = first.slice(k * depth, (k + 1) * depth);
  });
  const presigned = first.length;
  let signedDuringLoad = 0;
  // A sender down to its last transfers gets REFILL more signed; requests are gathered for a
  // couple of milliseconds and sent to the signing threads together.
  let toSign: Slot[] = [];
  let signTimer: NodeJS.Timeout | null = null;
  const signQueued = () => {
    signTimer = null;
    const batch = toSign;
    toSign = [];
    const jobs = batch.flatMap((x) => jobsFor(x, REFILL));
    signedDuringLoad += jobs.length;
    void ctx.signPool.sign(jobs).then((signed) => {
      batch.forEach((x, k) => {
        x.queue.push(...signed.slice(k * REFILL, (k + 1) * REFILL));
        x.refilling = false;
      });
    });
  };
  const refill = (x: Slot) => {
    if (x.refilling || x.queue.length > REFILL_BELOW) return;
    x.refilling = true;
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
  // Fuller SubmitTxs batches for the load (submitter.ts), the probe's wait again after it.
  const probeDelayMs = ctx.submitter.maxDelayMs;
  ctx.submitter.maxDelayMs = Math.max(probeDelayMs, OVERLOAD_BATCH_DELAY_MS);
  // One gathering lane, calls round-robin, as before p24 (submitter.ts roundRobin): a sender
  // here waits for each answer, so per-sender connections buy nothing and would cut the batches.
  const probeRoundRobin = ctx.submitter.roundRobin;
  ctx.submitter.roundRobin = true;
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
      if (!x.busy && x.queue.length > 0 && !x.s.tainted) {
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
    const p = x.queue[0]!;
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
          x.queue.shift();
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
        if (!s.tainted) refill(x);
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
  let maxLag: number;
  try {
    maxLag = await slots.run(
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
  } finally {
    ctx.submitter.roundRobin = probeRoundRobin;
    ctx.submitter.maxDelayMs = probeDelayMs;
  }

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
    signed: { before: presigned, during: signedDuringLoad },
    submitFailures: failures,
    refused,
    clientBlocked,
    answerTimes,
    uncommitted: admitted - slots.committed,
    ...(stuck ? { stuck } : {}),
  };
}
