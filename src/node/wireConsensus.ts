// The consensus side of a validator, built once by ValidatorNode.startComponents: the core
// (Replica or EpochReplica) with its transport membership, then the peer network, the test-only
// faults in front of it, the driver with the node's hooks, transaction gossip, and (DPoS) the
// transport following the core's epoch and each election. Construction and hooks only: node.ts
// starts and stops these components, so the start and stop orders read in one place.
import { create } from "@bufbuild/protobuf";
import type { EnvelopeContext } from "../consensus/envelope.js";
import { EpochReplica } from "../consensus/pbft/epochReplica.js";
import { Replica } from "../consensus/pbft/replica.js";
import type {
  EvidenceRecord,
  PersistedState,
  ReplicaStart,
  SigningRecord,
  Verdict,
} from "../consensus/pbft/types.js";
import type { ValidatorSet } from "../consensus/valset/index.js";
import type { NodeSigner, NodeVerifier, VerifyPool } from "../crypto/index.js";
import { CheckpointCertificateSchema, CommittedBlockSchema } from "../gen/parabft/v1/consensus_pb.js";
import type { Block, CommitCertificate } from "../gen/parabft/v1/types_pb.js";
import { componentLogger, type Logger } from "../logger/index.js";
import type { Mempool } from "../mempool/index.js";
import { type PeerCredentials, PeerNetwork } from "../net/index.js";
import type { ChainParams } from "../params/index.js";
import { epochOfHeight } from "../staking/epoch.js";
import type { ChainDb, SigningStateLog } from "../storage/index.js";
import { bytesEqual, toHex } from "../types/bytes.js";
import { errorMessage } from "../types/errors.js";
import type { Hash } from "../types/hash.js";
import { checkBlockTxs } from "./checkBlock.js";
import { type NodeConfig, parseHostPort } from "./config.js";
import { type LiveEpochSets, readSnapshot } from "./dpos.js";
import { ConsensusDriver, type Delivered, type EpochChange } from "./driver.js";
import type { EvidenceSubmitter } from "./evidence.js";
import { TxGossip } from "./gossip.js";
import { Membership } from "./membership.js";
import type { NodeMetrics } from "./metrics.js";
import { crashAfterPersistForTests, type DriverNet, Equivocator, TestFaults } from "./testFaults.js";
import { VerdictCache } from "./verdictCache.js";

const TICK_MS = 500;

export interface ReplicaWiringOpts {
  chainId: string;
  /** This validator's consensus key: its identity across epochs. */
  publicKey: Uint8Array;
  peers: NodeConfig["peers"];
  params: ChainParams;
  /** DPoS epochs (dposEnabled): an EpochReplica; else a Replica of one epoch forever. */
  dpos: boolean;
  /** Where the core resumes: storage's committed, executed and stable heights. */
  start: ReplicaStart;
  /** The signing state; null = missing, the core does not vote until caught up. */
  persisted: PersistedState | null;
}

export interface ReplicaWiringModules {
  genesisSet: ValidatorSet;
  sets: LiveEpochSets;
  signer: NodeSigner;
  verifier: NodeVerifier;
  /** The driver's verdict on a fresh block (the driver is built after the core). */
  validateBlock(block: Block): Verdict;
}

export interface ReplicaWiring {
  replica: EpochReplica | Replica;
  membership: Membership;
  envelopeContext: EnvelopeContext;
}

/** The consensus core, resumed from storage and the signing state, and its transport membership. */
export function createReplica(opts: ReplicaWiringOpts, mod: ReplicaWiringModules): ReplicaWiring {
  const epochLength = opts.params.staking.epochLength;
  // Consensus signatures come back inside certificates and repeated VIEW-CHANGEs: verify each once.
  const consensusVerifier = new VerdictCache(mod.verifier);
  const envelopeContext: EnvelopeContext = {
    chainId: opts.chainId,
    sets: mod.sets,
    verifier: consensusVerifier,
    maxMessageBytes: opts.params.limits.maxMessageBytes,
    currentEpoch: 0n,
    epochLength,
  };
  // DPoS (issue 11): one consensus instance per epoch, identified by the consensus key (the
  // index differs per epoch; a joiner starts as a follower with index -1 in the genesis set).
  const genesisIndex = mod.genesisSet.indexOf(opts.publicKey);
  const membership = new Membership(
    mod.genesisSet.members.map((m) => m.publicKey),
    new Map(opts.peers.map((p) => [p.index, p.address])),
    opts.publicKey,
  );
  // DPoS on or off: see dposEnabled.
  const dpos = opts.dpos;
  const ReplicaClass = dpos ? EpochReplica : Replica;
  if (!dpos) envelopeContext.epochLength = undefined;
  const replica = new ReplicaClass({
    chainId: opts.chainId,
    epoch: 0n,
    self: genesisIndex ?? -1,
    ...(dpos ? { epochLength } : {}),
    publicKey: opts.publicKey,
    sets: mod.sets,
    signer: mod.signer,
    verifier: consensusVerifier,
    params: opts.params.consensus,
    maxMessageBytes: opts.params.limits.maxMessageBytes,
    validateBlock: mod.validateBlock,
    start: opts.start,
    persisted: opts.persisted,
  });
  return { replica, membership, envelopeContext };
}

export interface DriverWiringOpts {
  config: NodeConfig;
  /** The validator's home: a relative test faults file is read from there. */
  home: string;
  params: ChainParams;
  publicKey: Uint8Array;
  /** Mutual TLS for peer links; undefined with net.insecure. */
  peerCredentials: PeerCredentials | undefined;
}

export interface DriverWiringModules extends ReplicaWiring {
  genesisSet: ValidatorSet;
  sets: LiveEpochSets;
  signer: NodeSigner;
  verifier: NodeVerifier;
  verifyPool: VerifyPool;
  mempool: Mempool;
  db: ChainDb;
  signingLog: SigningStateLog<PersistedState, SigningRecord>;
  evidence: EvidenceSubmitter;
  metrics: NodeMetrics;
  log: Logger;
  /** The heights this node reports in its peer status. */
  committedHeight(): bigint;
  executedHeight(): bigint;
  /** Signing records about to be persisted: the commit stage stores their block bodies as is. */
  keepBodies(records: readonly SigningRecord[]): void;
  onDeliver(d: Delivered): void;
  onDiverged(height: bigint, ours: Hash, stable: Hash): void;
  lastCommit(): CommitCertificate | null;
  /** DPoS: the core left the set; the follower should fetch blocks at once. */
  wakeFollower(): void;
}

export interface DriverWiring {
  net: PeerNetwork;
  /** Test-only faults (PARABFT_TEST_*, testFaults.ts): null unless set. */
  testFaults: TestFaults | null;
  driver: ConsensusDriver;
  gossip: TxGossip;
  /** DPoS: the last block of an epoch executed; the set it elected joins the live sets. */
  epochEndExecuted(height: bigint): void;
}

/** The peer network and the driver between it and the core, then gossip of admitted txs. */
export function wireDriver(opts: DriverWiringOpts, mod: DriverWiringModules): DriverWiring {
  const cfg = opts.config;
  const { replica, membership, sets, mempool, db, metrics, log } = mod;
  const c = opts.params.consensus;
  const peerAddr = parseHostPort("listen.peer", cfg.listen.peer);
  const net = new PeerNetwork(
    {
      chainId: cfg.chainId,
      localIndex: membership.selfIndex,
      listenHost: peerAddr.host,
      listenPort: peerAddr.port,
      peers: membership.peersFor(sets, replica.epoch),
      maxMessageBytes: opts.params.limits.maxMessageBytes,
      // A joiner or a restarted validator may be any number of epochs behind while it catches
      // up (epochs pass every epochLength heights, so a node down for a while is far behind):
      // peers are authenticated by key, the epoch is informational. A bounded slack left a
      // validator restarted more than a few epochs later unable to connect to anyone (issue 11).
      handshakeEpochSlack: Number.MAX_SAFE_INTEGER,
    },
    {
      signer: mod.signer,
      verifier: mod.verifier,
      onEnvelope: (from, bytes, env) => driver.onEnvelope(from, bytes, env),
      localStatus: () => ({
        epoch: replica.epoch,
        committedHeight: mod.committedHeight(),
        view: replica.view,
        stableCheckpoint: replica.stableHeight,
        executedHeight: mod.executedHeight(),
      }),
      metrics: metrics.net,
      log: componentLogger(log, "net"),
      credentials: opts.peerCredentials,
      // DPoS: an envelope's sender is an index in its epoch's set; the peer is known by key.
      senderIs: (peer, epoch, sender) => {
        // An epoch this node does not know yet (it lags): the driver's verdict decides.
        const set = sets.get(epoch);
        if (set === undefined) return true;
        const key = set.members[sender]?.publicKey;
        const peerKey = membership.keyOf(peer);
        return key !== undefined && peerKey !== undefined && bytesEqual(key, peerKey);
      },
    },
  );
  // Test-only faults (PARABFT_TEST_*, testFaults.ts): null, and nothing wrapped, unless set.
  const testFaults = TestFaults.fromEnv(cfg.validatorIndex, opts.home, log);
  const driverNet: DriverNet =
    testFaults === null
      ? net
      : new Equivocator(net, {
          chainId: cfg.chainId,
          self: (epoch) => sets.get(epoch)?.indexOf(opts.publicKey) ?? -1,
          n: mod.genesisSet.members.length,
          signer: mod.signer,
          active: () => testFaults.current.equivocate,
        });
  const driver: ConsensusDriver = new ConsensusDriver(
    {
      chainId: cfg.chainId,
      self: cfg.validatorIndex,
      consensus: c,
      maxBlockTxs: c.maxBlockTxs,
      maxBlockBytes: c.maxBlockBytes,
      tickMs: TICK_MS,
    },
    {
      replica,
      envelopeContext: mod.envelopeContext,
      mempool,
      net: driverNet,
      log: componentLogger(log, "consensus"),
      persist: async (records) => {
        mod.keepBodies(records);
        await mod.signingLog.append(...records);
        crashAfterPersistForTests(cfg.validatorIndex, records);
      },
      onDeliver: mod.onDeliver,
      readCommitted: async (from, to) => {
        const records = await db.getCommittedRange(from, to, 64);
        return records.map((r) =>
          create(CommittedBlockSchema, {
            height: r.height,
            block: r.block ?? undefined,
            certificate: r.certificate,
          }),
        );
      },
      readBody: async (digest) => (await db.getBlockByDigest(digest))?.block ?? null,
      checkBlock: (block) => {
        let verified = 0;
        return checkBlockTxs(block, {
          chainId: cfg.chainId,
          limits: opts.params.limits,
          consensus: c,
          verifyTxs: (txs, hashes) => {
            verified = txs.length;
            return mod.verifyPool.verifyTxs(txs, hashes);
          },
          pooledVerified: (tx, hex) => mempool.hasVerified(tx, hex),
        }).finally(() => metrics.driver.blockChecked?.(block.txs.length, verified));
      },
      onEvidence: (e) => onEvidence(e, mod),
      onDiverged: mod.onDiverged,
      onStableCheckpoint: (height) => {
        metrics.stableCheckpoint.set(Number(height));
        const cert = replica.stableCheckpoint;
        if (cert && cert.height === height) {
          void db
            .putStableCheckpoint(create(CheckpointCertificateSchema, cert))
            .catch((err: unknown) => log.error({ err: errorMessage(err) }, "could not store checkpoint"));
        }
      },
      lastCommit: mod.lastCommit,
      // DPoS: sends by (epoch, index) resolve the member's key, then its transport index.
      route: {
        send: (epoch, to, bytes) => {
          const t = membership.memberIndex(sets.get(epoch), to);
          if (t !== undefined) driverNet.send(t, bytes);
        },
        // To every transport peer (the sets of epoch − 1 … latest): a superset of the epoch's set.
        broadcast: (_epoch, bytes) => driverNet.broadcast(bytes),
      },
      peerKey: (from) => membership.keyOf(from),
      onEpochChanged: (change) => onEpochChanged(change),
      metrics: metrics.driver,
      now: testFaults?.now,
    },
  );
  const gossip = new TxGossip(
    { chainId: cfg.chainId },
    {
      sender: () => ({ self: replica.selfIndex, epoch: replica.epoch }),
      broadcast: (bytes) => net.broadcast(bytes),
      staleOwn: (olderThanMs, max) => mempool.staleOwn(olderThanMs, max),
      regossiped: metrics.regossiped,
    },
  );
  mempool.onAdmitted((txs, origin) => {
    // Gossip what clients sent us, so backups have verified it before they see the block. Also
    // what this node proposes at once (closed loop, light load): a primary that crashes before
    // its proposal prepares must not take the only copy with it (l19 measured the skip: no
    // finality change, -4 % CPU per height inside the noise; not kept).
    if (origin === "api") gossip.queue(txs.map((t) => t.tx));
    driver.notifyPendingWork();
  });
  /** The core entered a new epoch: transport membership, status and metrics follow. */
  function onEpochChanged(change: EpochChange): void {
    net.setPeers(membership.peersFor(sets, change.epoch));
    metrics.epoch.set(Number(change.epoch));
    metrics.inValidatorSet.set(change.self === null ? 0 : 1);
    log.info(
      {
        epoch: String(change.epoch),
        self: change.self,
        boundary: String(change.boundary),
        size: change.set.size,
      },
      change.self === null ? "epoch changed: following (not in the set)" : "epoch changed: validating",
    );
    if (change.self === null) mod.wakeFollower();
  }
  /** The last block of epoch e executed: the set of e+2 it elected joins the live sets. */
  function epochEndExecuted(height: bigint): void {
    const e = epochOfHeight(height, opts.params.staking.epochLength);
    void readSnapshot(db, e + 2n)
      .then((s) => {
        if (s === null || !sets.add(s)) return;
        log.info(
          {
            epoch: String(s.epoch),
            kept: s.kept,
            members: s.members.map((m) => toHex(m.consensusKey).slice(0, 12)),
          },
          "validator set elected",
        );
        // New members join the transport now (they connect before their epoch), then the core.
        net.setPeers(membership.peersFor(sets, replica.epoch));
        driver.setsChanged();
      })
      .catch((err: unknown) => log.error({ err: errorMessage(err) }, "could not read the elected set"));
  }
  return { net, testFaults, driver, gossip, epochEndExecuted };
}

/** Equivocation evidence: logged, counted, stored, and submitted for slashing. */
function onEvidence(
  e: EvidenceRecord,
  mod: Pick<DriverWiringModules, "db" | "evidence" | "metrics" | "log">,
): void {
  mod.log.warn(
    { sender: e.sender, phase: e.phase, height: String(e.height), view: String(e.view) },
    "equivocation evidence kept",
  );
  mod.metrics.evidence.inc({ phase: e.phase });
  void mod.db
    .putEvidence(e)
    .catch((err: unknown) => mod.log.error({ err: errorMessage(err) }, "could not store evidence"));
  // DPoS: the chain slashes and tombstones the offender (once per key; duplicates are no-ops).
  void mod.evidence
    .submit(e)
    .catch((err: unknown) => mod.log.warn({ err: errorMessage(err) }, "could not submit evidence"));
}
