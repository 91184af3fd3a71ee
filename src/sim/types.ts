// The simulator's internal shapes: one replica's simulated process (SimNode) and the items of the
// virtual-time event queue (QEvent). Shared by simulation.ts, the files it is split into
// (setup, harness, messaging, deliveries, workloadDriver) and elections.ts; nothing outside
// src/sim uses them.
import type { EpochReplica } from "../consensus/pbft/epochReplica.js";
import type { Replica } from "../consensus/pbft/replica.js";
import type { Event, SigningRecord } from "../consensus/pbft/types.js";
import type { CommittedBlock } from "../gen/parabft/v1/consensus_pb.js";
import type { Block, CommitCertificate } from "../gen/parabft/v1/types_pb.js";
import type { Adversary, Expectation } from "./byzantine.js";
import type { FakeExecutor } from "./executor.js";
import type { TimelineEvent } from "./faults.js";
import type { StandInSigner } from "./signer.js";
import type { SimMempool } from "./workload.js";

export type QEvent =
  | { k: "net"; from: number; to: number; bytes: Uint8Array; honest: boolean; expect?: Expectation }
  | { k: "timer"; r: number; life: number; timer: string; token: number }
  | { k: "exec"; r: number; life: number }
  | { k: "build"; r: number; life: number; height: bigint }
  | { k: "tick"; r: number; life: number }
  | { k: "local"; r: number; life: number; event: Event }
  | { k: "submit"; client: number }
  | { k: "retry"; client: number }
  | { k: "fault"; ev: TimelineEvent }
  | { k: "crash"; r: number; restartAfterMs: number };

export interface SimNode {
  index: number;
  honest: boolean;
  signer: StandInSigner;
  adversary: Adversary | null;
  core: Replica | EpochReplica | null;
  life: number;
  skewMs: number;
  // Durable: survives crashes (signing state beside the key + the commit batches).
  records: SigningRecord[];
  blocks: Map<bigint, CommittedBlock>;
  committedHeight: bigint;
  chainHash: Uint8Array;
  chainHashes: Map<bigint, Uint8Array>;
  lastCert: CommitCertificate | null;
  stableHeight: bigint;
  exec: FakeExecutor;
  // Volatile.
  mempool: SimMempool;
  timers: Map<string, number>;
  bodies: Map<string, Block>;
  reportedPending: number;
  /** Set when this replica's core sends a PRE-PREPARE (tells the driver a proposal was taken). */
  sentPrePrepare: boolean;
}
