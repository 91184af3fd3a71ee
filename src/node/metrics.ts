// prom-client implementations of the metric interfaces the node's components declare.
import type { ApiMetrics } from "../api/server.js";
import { STALL_PHASES } from "../consensus/pbft/pace.js";
import type { PipelineMetrics } from "../exec/pipeline.js";
import type { MempoolMetrics } from "../mempool/index.js";
import {
  type Counter,
  type Gauge,
  type Histogram,
  LATENCY_BUCKETS_SECONDS,
  type MetricsRegistry,
} from "../metrics/index.js";
import type { NetMetrics } from "../net/index.js";
import { netMetrics } from "../net/index.js";
import type { DriverMetrics } from "./driver.js";

export interface NodeMetrics {
  committedHeight: Gauge;
  executedHeight: Gauge;
  stableCheckpoint: Gauge;
  view: Gauge;
  peers: Gauge;
  diverged: Gauge;
  /** DPoS: the consensus epoch and whether this node is in its set. */
  epoch: Gauge;
  inValidatorSet: Gauge;
  committedTxs: Counter;
  regossiped: Counter;
  escapedErrors: Counter<"kind">;
  evidence: Counter<"phase">;
  finalitySeconds: Histogram;
  dbWriteSeconds: Histogram<"kind">;
  driver: DriverMetrics;
  net: NetMetrics;
  mempool: MempoolMetrics;
  api: ApiMetrics;
  pipeline: PipelineMetrics;
}

export function createNodeMetrics(f: MetricsRegistry): NodeMetrics {
  const verdicts = f.counter<"verdict" | "reason">({
    name: "consensus_messages_total",
    help: "Peer messages by verdict (accept, ignore, reject) and reason",
    labelNames: ["verdict", "reason"],
  });
  const viewChanges = f.counter({
    name: "consensus_view_changes_total",
    help: "Views entered after a view change",
  });
  const requestTimeout = f.gauge({
    name: "consensus_request_timeout_seconds",
    help: "The request timeout this replica would arm now (paced: 2 x the longest recent wait, clamped; doubled per failed view)",
  });
  const armedTimeout = f.gauge<"timer">({
    name: "consensus_view_timer_armed_seconds",
    help: "The view timer's armed timeout, by what it waits for (request, view_change); 0 when not armed",
    labelNames: ["timer"],
  });
  const longestWait = f.gauge({
    name: "consensus_pace_longest_wait_seconds",
    help: "The longest wait for progress of the last 20 s, which the request timeout follows (pace.ts)",
  });
  const timeoutsFired = f.counter({
    name: "consensus_request_timeouts_total",
    help: "Request timers that fired and started a view change",
  });
  const timeoutsStalled = f.counter<"stalled_at">({
    name: "consensus_request_timeouts_stalled_total",
    help: "Request timeouts by what the lowest uncommitted height waited for in its view (proposal, body, prepare, commit)",
    labelNames: ["stalled_at"],
  });
  // Every phase is exported from the start, so a scrape reads 0 rather than nothing.
  for (const phase of STALL_PHASES) timeoutsStalled.inc({ stalled_at: phase }, 0);
  const blockCheckTxs = f.counter<"source">({
    name: "consensus_block_check_txs_total",
    help: "Transactions of proposed blocks checked (source=block), and those the pool did not vouch for, verified at the check (source=verified)",
    labelNames: ["source"],
  });
  const superseded = f.counter({
    name: "consensus_request_timers_superseded_total",
    help: "Due request timers found re-armed by progress read in the same turn of the event loop (a view change avoided)",
  });
  const lastFired = f.gauge<"value">({
    name: "consensus_last_request_timeout_seconds",
    help: "At the last request timeout: the armed timeout, the longest recent wait then, and the Node timer's lateness",
    labelNames: ["value"],
  });
  const proposals = f.counter({ name: "consensus_proposals_total", help: "Blocks proposed by this node" });
  const proposedTxs = f.counter({
    name: "consensus_proposed_txs_total",
    help: "Transactions in proposed blocks",
  });
  const phases = f.histogram<"phase">({
    name: "consensus_phase_seconds",
    help: "Per height: PREPARE signed to prepared (COMMIT signed), and COMMIT signed to committed",
    labelNames: ["phase"],
    buckets: LATENCY_BUCKETS_SECONDS,
  });
  const persist = f.histogram({
    name: "consensus_signing_state_persist_seconds",
    help: "Durable signing-state writes before sends",
    buckets: LATENCY_BUCKETS_SECONDS,
  });
  const alarms = f.counter<"code">({
    name: "consensus_alarms_total",
    help: "Safety alarms from the core (e.g. CONFLICTING_REPROPOSAL), by code",
    labelNames: ["code"],
  });
  const amnesia = f.counter<"reason">({
    name: "consensus_amnesia_waits_total",
    help: "A validator without signing state stays silent, by reason (quorum, height, view) or rejoined",
    labelNames: ["reason"],
  });
  const mempoolAdmitted = f.counter<"origin">({
    name: "mempool_admitted_total",
    help: "Transactions admitted to the mempool",
    labelNames: ["origin"],
  });
  const mempoolRejected = f.counter<"code">({
    name: "mempool_rejected_total",
    help: "Transactions refused by the mempool, by code",
    labelNames: ["code"],
  });
  const mempoolSize = f.gauge({ name: "mempool_txs", help: "Transactions in the mempool" });
  const mempoolBytes = f.gauge({ name: "mempool_bytes", help: "Bytes in the mempool" });
  const stageDepth = f.gauge<"stage">({
    name: "exec_stage_queue_depth",
    help: "Blocks waiting at each execution pipeline stage",
    labelNames: ["stage"],
  });
  const stageBusy = f.counter<"stage">({
    name: "exec_stage_busy_seconds_total",
    help: "Time each execution pipeline stage spent working",
    labelNames: ["stage"],
  });
  const stageTxs = f.counter<"stage">({
    name: "exec_stage_txs_total",
    help: "Transactions through each execution pipeline stage (throughput)",
    labelNames: ["stage"],
  });
  const stageBackpressure = f.counter({
    name: "exec_backpressure_total",
    help: "Times the commit stage waited for room in the execution pipeline",
  });
  const apiCalls = f.histogram<"method" | "code">({
    name: "api_call_seconds",
    help: "Public API calls by method and gRPC status code",
    labelNames: ["method", "code"],
    buckets: LATENCY_BUCKETS_SECONDS,
  });
  const apiLimited = f.counter<"reason">({
    name: "api_limited_total",
    help: "Connections or calls refused, and block streams dropped, by a resource limit",
    labelNames: ["reason"],
  });
  const apiOpen = f.gauge<"kind">({
    name: "api_open",
    help: "Open API connections and StreamBlocks subscriptions",
    labelNames: ["kind"],
  });
  return {
    committedHeight: f.gauge({ name: "consensus_committed_height", help: "Highest committed height" }),
    executedHeight: f.gauge({ name: "exec_executed_height", help: "Highest executed height" }),
    stableCheckpoint: f.gauge({ name: "consensus_stable_checkpoint_height", help: "Last stable checkpoint" }),
    view: f.gauge({ name: "consensus_view", help: "Current view" }),
    peers: f.gauge({ name: "net_peers_connected", help: "Authenticated peer streams" }),
    epoch: f.gauge({ name: "consensus_epoch", help: "Consensus epoch the node works in (DPoS)" }),
    inValidatorSet: f.gauge({
      name: "consensus_in_validator_set",
      help: "1 when this node is a member of the current epoch's validator set, 0 while it follows",
    }),
    diverged: f.gauge({
      name: "node_diverged",
      help: "1 when this replica's checkpoint differs from a stable one",
    }),
    committedTxs: f.counter({ name: "consensus_committed_txs_total", help: "Transactions committed" }),
    regossiped: f.counter({
      name: "mempool_regossiped_total",
      help: "Own transactions gossiped again because they were still waiting (lost gossip repair)",
    }),
    escapedErrors: f.counter<"kind">({
      name: "process_escaped_errors_total",
      help: "Errors that escaped every handler (logged; the node kept running unless storage failed)",
      labelNames: ["kind"],
    }),
    evidence: f.counter<"phase">({
      name: "consensus_evidence_total",
      help: "Equivocation evidence kept, by phase",
      labelNames: ["phase"],
    }),
    finalitySeconds: f.histogram({
      name: "api_finality_seconds",
      help: "Submit (admitted by this node's API) to committed",
      buckets: LATENCY_BUCKETS_SECONDS,
    }),
    dbWriteSeconds: f.histogram<"kind">({
      name: "storage_write_seconds",
      help: "RocksDB batch write latency by kind",
      labelNames: ["kind"],
      buckets: LATENCY_BUCKETS_SECONDS,
    }),
    driver: {
      verdict: (verdict, reason) => verdicts.inc({ verdict, reason }),
      phase: (phase, seconds) => phases.observe({ phase }, seconds),
      viewChange: () => viewChanges.inc(),
      proposal: (txs) => {
        proposals.inc();
        proposedTxs.inc(txs);
      },
      persistSeconds: (s) => persist.observe(s),
      alarm: (code) => alarms.inc({ code }),
      amnesia: (reason) => amnesia.inc({ reason }),
      pacer: (p) => {
        requestTimeout.set(p.requestTimeoutMs / 1000);
        longestWait.set(p.longestWaitMs / 1000);
        armedTimeout.set({ timer: "request" }, p.armedForRequests ? p.armedTimeoutMs / 1000 : 0);
        armedTimeout.set({ timer: "view_change" }, p.armedForRequests ? 0 : p.armedTimeoutMs / 1000);
      },
      requestTimerSuperseded: () => superseded.inc(),
      blockChecked: (txs, verified) => {
        blockCheckTxs.inc({ source: "block" }, txs);
        blockCheckTxs.inc({ source: "verified" }, verified);
      },
      requestTimeout: (r) => {
        timeoutsFired.inc();
        timeoutsStalled.inc({ stalled_at: r.stalledAt });
        lastFired.set({ value: "armed" }, r.armedTimeoutMs / 1000);
        lastFired.set({ value: "longest_wait" }, r.longestWaitMs / 1000);
        lastFired.set({ value: "late" }, r.lateMs / 1000);
      },
    },
    net: netMetrics(f),
    mempool: {
      admitted: (origin, count) => mempoolAdmitted.inc({ origin }, count),
      rejected: (code) => mempoolRejected.inc({ code }),
      size: (txs, bytes) => {
        mempoolSize.set(txs);
        mempoolBytes.set(bytes);
      },
    },
    api: {
      call: (method, code, seconds) => apiCalls.observe({ method, code }, seconds),
      limited: (reason) => apiLimited.inc({ reason }),
      open: (connections, streams) => {
        apiOpen.set({ kind: "connections" }, connections);
        apiOpen.set({ kind: "block_streams" }, streams);
      },
    },
    pipeline: {
      queueDepth: (stage, depth) => stageDepth.set({ stage }, depth),
      stageBusy: (stage, ms) => stageBusy.inc({ stage }, ms / 1000),
      stageDone: (stage, txs) => stageTxs.inc({ stage }, txs),
      backpressure: () => stageBackpressure.inc(),
    },
  };
}
