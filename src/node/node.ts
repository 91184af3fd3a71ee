import path from "node:path";
import type { ApiBackend, BlockRecord, BlockRef, NodeStatus, SubmitResult } from "../api/backend.js";
import { type EpochSetProofRecord, readEpochSetProof } from "../api/epochProof.js";
import { ApiServer } from "../api/server.js";
import type { EpochReplica } from "../consensus/pbft/epochReplica.js";
import { applySigningRecord, emptyPersistedState } from "../consensus/pbft/persist.js";
import type { Replica } from "../consensus/pbft/replica.js";
import type { PersistedState, SigningRecord } from "../consensus/pbft/types.js";
import { ValidatorSet } from "../consensus/valset/index.js";
import {
  NodeSigner,
  NodeVerifier,
  nativeSha256,
  nativeTxHash,
  readKeyFile,
  VerifyPool,
} from "../crypto/index.js";
import { decodeAccount } from "../exec/codec.js";
import type { ParallelExecutor } from "../exec/parallel.js";
import { ExecutionPipeline } from "../exec/pipeline.js";
import { recoverExecution } from "../exec/recovery.js";
import type { ExecutionResult } from "../exec/types.js";
import type { Receipt, SignedTx, ValidatorSet as ValidatorSetMsg } from "../gen/parabft/v1/types_pb.js";
import { componentLogger, createLogger, type Logger } from "../logger/index.js";
import { Mempool, MempoolError, mempoolOptsFromParams } from "../mempool/index.js";
import { MetricsRegistry, MetricsServer } from "../metrics/index.js";
import { loadPeerCredentials, type PeerNetwork } from "../net/index.js";
import type { ChainParams } from "../params/index.js";
import { isLastHeightOfEpoch } from "../staking/epoch.js";
import { ChainDb, SigningStateLog } from "../storage/index.js";
import { toHex } from "../types/bytes.js";
import { errorMessage, ParabftError } from "../types/errors.js";
import { type Hash, useSha256 } from "../types/hash.js";
import { accountKey } from "../types/stateKeys.js";
import { CommitPath } from "./commitPath.js";
import { loadConfig, type NodeConfig, resolveConfigPaths } from "./config.js";
import { dposEnabled, EpochTallies, LiveEpochSets, validatorSetMessage } from "./dpos.js";
import type { ConsensusDriver } from "./driver.js";
import { EvidenceSubmitter } from "./evidence.js";
import { Follower } from "./follower.js";
import { checkConfigAgainstGenesis, type Genesis, genesisValidatorSet, loadGenesis } from "./genesis.js";
import type { TxGossip } from "./gossip.js";
import { NodeHealth } from "./health.js";
import { installLastResort } from "./lastResort.js";
import { createNodeMetrics, type NodeMetrics } from "./metrics.js";
import { ensureGenesis, openExecutor } from "./recovery.js";
import { ACK_BEFORE_COMMIT_FOR_TESTS } from "./testFaults.js";
import { TRACE, traceAdmitted } from "./trace.js";
import { Waiters } from "./waiters.js";
import { createReplica, wireDriver } from "./wireConsensus.js";

export type NodeErrorCode = "UNAVAILABLE" | "HALTED" | "DIVERGED";

export interface RunningNode {
  stop(): Promise<void>;
  readonly ready: Promise<void>;
}

export interface ValidatorNodeModules {
  log?: Logger;
}

/**
 * A validator process. Start order: storage → signing state → crypto → executor (with recovery)
 * → execution loop → consensus core → mempool → peer network → driver → follower → API → metrics
 * → gossip.
 * Stop: reverse.
 */
export class ValidatorNode implements ApiBackend, RunningNode {
  readonly log: Logger;
  private db!: ChainDb;
  private signingLog!: SigningStateLog<PersistedState, SigningRecord>;
  private verifyPool!: VerifyPool;
  private executor!: ParallelExecutor;
  private replica!: EpochReplica | Replica;
  private follower: Follower | null = null;
  private mempool!: Mempool;
  private net!: PeerNetwork;
  private driver!: ConsensusDriver;
  private api!: ApiServer;
  private metricsServer: MetricsServer | null = null;
  private readonly registry: MetricsRegistry;
  private readonly metrics: NodeMetrics;
  private readonly set: ValidatorSet;
  private readonly sets: LiveEpochSets;
  /** Signing tallies of the epochs in progress, folded from the committed blocks (dpos.ts). */
  private readonly tallies: EpochTallies;
  private readonly params: ChainParams;
  private readonly committed = new Waiters<bigint>();
  private readonly executedTx = new Waiters<Receipt>();
  private readonly blockListeners = new Set<(b: BlockRecord) => void>();
  /** StreamBlocks subscribers of the executed height (subscribeExecuted). */
  private readonly executedListeners = new Set<(height: bigint) => void>();
  private readonly stoppers: (() => Promise<void>)[] = [];
  private gossip!: TxGossip;
  private executedHeightValue = 0n;
  private stateRootValue: Hash = new Uint8Array(32);
  /** DPoS epochs (dposEnabled), decided before storage opens. */
  private dposOn = false;
  readonly ready: Promise<void>;
  private readonly health: NodeHealth;
  private execution!: ExecutionPipeline;
  private commits!: CommitPath;
  /** DPoS: the last block of an epoch executed; its election joins the live sets (wireConsensus.ts). */
  private epochEndExecuted!: (height: bigint) => void;
  private evidence!: EvidenceSubmitter;

  constructor(
    readonly home: string,
    readonly config: NodeConfig,
    readonly genesis: Genesis,
    mod: ValidatorNodeModules = {},
  ) {
    this.log = (mod.log ?? createLogger({ level: config.log.level })).child({ node: config.validatorIndex });
    // Block digests, txs roots and addresses hash on the hot path: node:crypto, not pure JS.
    useSha256(nativeSha256);
    this.params = genesis.params;
    this.set = ValidatorSet.fromValidators(0n, genesisValidatorSet(genesis).validators);
    this.sets = new LiveEpochSets(this.set);
    this.tallies = new EpochTallies(this.params.staking.epochLength);
    this.registry = new MetricsRegistry({
      processMetrics: true,
      defaultLabels: { validator: String(config.validatorIndex) },
    });
    this.metrics = createNodeMetrics(this.registry);
    this.health = new NodeHealth({
      setServing: (ready) => this.api?.setServing(ready),
      coreStatus: () => this.replica.status,
    });
    this.ready = this.health.ready;
  }

  /** Loads config and genesis from `home` (errors name the field) and starts the node. */
  static async start(home: string, mod: ValidatorNodeModules = {}): Promise<ValidatorNode> {
    const config = loadConfig(home);
    const paths = resolveConfigPaths(home, config);
    const genesis = loadGenesis(paths.genesisFile);
    const node = new ValidatorNode(home, config, genesis, mod);
    try {
      await node.startComponents();
    } catch (err: unknown) {
      await node.stop().catch(() => {});
      throw err;
    }
    return node;
  }

  private async startComponents(): Promise<void> {
    const cfg = this.config;
    const paths = resolveConfigPaths(this.home, cfg);
    const key = await readKeyFile(paths.keyFile);
    checkConfigAgainstGenesis(cfg, this.genesis, key.publicKey);
    const log = this.log;
    // Peer links are mutual TLS unless net.insecure says otherwise (checked before anything opens).
    const peerCredentials = cfg.net.insecure
      ? undefined
      : await loadPeerCredentials({
          certFile: paths.tlsCertFile,
          trustedFile: paths.tlsTrustedCertsFile,
          secretKey: key.secretKey,
          publicKey: key.publicKey,
        });
    const removeLastResort = installLastResort({
      log,
      count: (kind) => this.metrics.escapedErrors.inc({ kind }),
    });
    this.stoppers.push(async () => removeLastResort());

    // Storage, then the signing state (beside the key, outside the data directory).
    this.dposOn = dposEnabled(this.genesis, this.set.indexOf(key.publicKey));
    const epochLength = this.params.staking.epochLength;
    this.db = await ChainDb.open(paths.dataDir, {
      log: componentLogger(log, "storage"),
      onWrite: (kind, ms) => this.metrics.dbWriteSeconds.observe({ kind }, ms / 1000),
      // DPoS: the last block of each epoch keeps its write set, for GetEpochSetProof.
      keepWriteSetOf: (h) => this.dposOn && isLastHeightOfEpoch(h, epochLength),
    });
    this.stoppers.push(() => this.db.close());
    this.signingLog = new SigningStateLog(path.dirname(paths.signingStateFile), {
      fold: applySigningRecord,
      initial: emptyPersistedState,
    });
    const persisted = await this.signingLog.open();
    this.stoppers.push(() => this.signingLog.close());
    if (persisted === null) log.warn("no signing state found: this validator will not vote until caught up");

    // Crypto: one verification rule, a worker pool for transaction signatures.
    const verifier = new NodeVerifier();
    const signer = new NodeSigner(key.secretKey);
    this.evidence = new EvidenceSubmitter({
      chainId: cfg.chainId,
      signer,
      sets: this.sets,
      getState: (key) => this.db.getState(key),
      admit: async (tx) => (await this.mempool.add(tx, "api")).hash,
      log: componentLogger(log, "evidence"),
    });
    this.verifyPool = new VerifyPool({ size: cfg.verify.workers });
    await this.verifyPool.start();
    this.stoppers.push(() => this.verifyPool.stop());

    // Execution state: genesis on an empty store, then re-execute what was committed but not executed.
    await ensureGenesis(this.db, this.genesis);
    this.executor = await openExecutor(
      { workers: cfg.execution.workers, params: this.params },
      { db: this.db, sets: this.sets, tallies: this.tallies },
    );
    this.stoppers.push(() => this.executor.close());
    // Blocks committed before a crash but not executed are executed again, in order.
    // Sets elected before a restart (snapshots persisted by executed epoch hooks), then recovery.
    await this.sets.load(this.db);
    await recoverExecution(this.executor, this.db, this.db, componentLogger(log, "exec"));
    await this.sets.load(this.db);
    this.executedHeightValue = this.executor.executedHeight;
    this.stateRootValue = this.executor.stateRoot;
    this.execution = new ExecutionPipeline(
      { queueCapacity: this.params.consensus.maxExecLag },
      {
        executor: this.executor,
        store: this.db,
        metrics: this.metrics.pipeline,
        log: componentLogger(log, "exec"),
        onExecuted: (height, root, result) => this.onExecuted(height, root, result),
        onError: (err) => this.stageFailed("execute", err),
      },
    );
    await this.execution.start();
    // Stopped before the executor and storage close: the commit stage feeds the pipeline.
    this.stoppers.push(async () => {
      // Built once the mempool runs (below): a start that failed before has delivered nothing.
      if (this.commits !== undefined) await this.commits.drainAndStop();
      await this.execution.stop();
    });

    // The consensus core resumes from storage and the signing state.
    const committedHeight = await this.db.getCommittedHeight();
    const top = committedHeight > 0n ? await this.db.getBlock(committedHeight) : undefined;
    const stable = await this.db.getStableCheckpoint();
    const lastCommitCert =
      committedHeight > 0n ? ((await this.db.getCertificate(committedHeight)) ?? null) : null;
    const core = createReplica(
      {
        chainId: cfg.chainId,
        publicKey: key.publicKey,
        peers: cfg.peers,
        params: this.params,
        dpos: this.dposOn,
        start: {
          committedHeight,
          chainHash: top?.chainHash ?? new Uint8Array(32),
          executedHeight: this.executedHeightValue,
          stableHeight: stable?.height ?? 0n,
        },
        persisted,
      },
      {
        genesisSet: this.set,
        sets: this.sets,
        signer,
        verifier,
        validateBlock: (block) => this.driver.validateBlock(block),
      },
    );
    this.replica = core.replica;

    // Mempool: nonces come from executed state; the pool remembers committed-but-unexecuted ones.
    this.mempool = new Mempool(
      mempoolOptsFromParams(cfg.chainId, this.params.limits, {
        maxTxs: cfg.mempool.maxTxs,
        maxBytes: cfg.mempool.maxBytes,
        maxPerSender: cfg.mempool.maxPerSender,
        backlogSeconds: cfg.mempool.backlogMs / 1000,
        minBacklog: cfg.mempool.minBacklog,
      }),
      {
        verifyTxs: (txs, hashes, senders) => this.verifyPool.verifyTxs(txs, hashes, senders),
        hashTx: nativeTxHash,
        // null for no account: paid admission refuses senders that do not exist.
        account: async (address) => {
          const raw = await this.db.getState(accountKey(address));
          return raw === undefined || raw === null ? null : decodeAccount(raw);
        },
        log: componentLogger(log, "mempool"),
        metrics: this.metrics.mempool,
      },
    );
    await this.mempool.start();
    this.stoppers.push(() => this.mempool.stop());
    this.commits = new CommitPath(
      {
        committedHeight,
        lastBlockTimeMs: top?.blockTimeMs ?? this.genesis.genesisTimeMs,
        lastCommitCert,
      },
      {
        db: this.db,
        mempool: this.mempool,
        execution: this.execution,
        tallies: this.tallies,
        committed: this.committed,
        blockListeners: this.blockListeners,
        metrics: this.metrics,
        log: this.log,
        notifyPendingWork: () => this.driver.notifyPendingWork(),
        halted: () => this.health.halted,
        onFailed: (err) => this.stageFailed("commit", err),
      },
    );

    // Peer network and the driver between it and the core.
    const wired = wireDriver(
      { config: cfg, home: this.home, params: this.params, publicKey: key.publicKey, peerCredentials },
      {
        ...core,
        genesisSet: this.set,
        sets: this.sets,
        signer,
        verifier,
        verifyPool: this.verifyPool,
        mempool: this.mempool,
        db: this.db,
        signingLog: this.signingLog,
        evidence: this.evidence,
        metrics: this.metrics,
        log,
        committedHeight: () => this.commits.committedHeight,
        executedHeight: () => this.executedHeightValue,
        keepBodies: (records) => this.commits.keepBodies(records),
        onDeliver: (d) => this.commits.deliver(d),
        onDiverged: (height, ours, stable) => this.onDiverged(height, ours, stable),
        lastCommit: () => this.commits.lastCommitCert,
        wakeFollower: () => this.follower?.wake(),
      },
    );
    this.net = wired.net;
    this.driver = wired.driver;
    this.gossip = wired.gossip;
    this.epochEndExecuted = wired.epochEndExecuted;
    const testFaults = wired.testFaults;
    this.stoppers.push(() => this.driver.stop());
    await this.net.start();
    this.stoppers.push(async () => {
      this.gossip.stop();
      await this.net.stop();
    });
    if (testFaults !== null) {
      await testFaults.start((v) => this.net.setTestOnlyDelay(v.peerDelayMs, v.peerJitterMs));
      this.stoppers.push(async () => testFaults.stop());
    }
    this.driver.start();
    // Outside the current set the node follows the chain from other validators' APIs.
    const apis = cfg.peers.flatMap((p) => (p.api !== undefined ? [p.api] : []));
    this.follower = new Follower({
      apis,
      // Also a validator that lags its peers by an epoch or more (restarted, wiped): it cannot
      // check their votes or statuses before it knows their epoch's set, so it fetches blocks.
      following: () =>
        (this.replica.status === "following" || ("lagging" in this.replica && this.replica.lagging)) &&
        !this.health.halted,
      committedHeight: () => this.replica.committedHeight,
      deliver: (blocks) => this.driver.followBlocks(blocks),
      log: componentLogger(log, "follow"),
    });
    this.follower.start();
    this.stoppers.push(async () => this.follower?.stop());

    // Public API and metrics last: serve only what is running.
    this.api = new ApiServer(
      { address: cfg.listen.api, maxMessageBytes: this.params.limits.maxMessageBytes, ...cfg.api },
      { backend: this, log: componentLogger(log, "api"), metrics: this.metrics.api },
    );
    await this.api.start();
    this.stoppers.push(() => this.api.stop());
    if (cfg.listen.metrics !== "") {
      this.metricsServer = new MetricsServer(
        { listen: cfg.listen.metrics },
        { registry: this.registry, log },
      );
      await this.metricsServer.start();
      const server = this.metricsServer;
      this.stoppers.push(() => server.stop());
    }
    this.readinessLoop();
    this.gossip.start();
    log.info(
      {
        chainId: cfg.chainId,
        index: cfg.validatorIndex,
        api: cfg.listen.api,
        peer: cfg.listen.peer,
        committed: String(committedHeight),
        executed: String(this.executedHeightValue),
      },
      "validator started",
    );
  }

  /** Stops every component in reverse start order; safe to call twice. */
  async stop(): Promise<void> {
    this.health.stopped();
    while (this.stoppers.length > 0) {
      const stopOne = this.stoppers.pop()!;
      try {
        await stopOne();
      } catch (err: unknown) {
        this.log.warn({ err: errorMessage(err) }, "component failed to stop cleanly");
      }
    }
    this.committed.rejectAll(new ParabftError("HALTED", {}, "node stopped"));
    this.executedTx.rejectAll(new ParabftError("HALTED", {}, "node stopped"));
    this.log.info("validator stopped");
  }

  // ---------------------------------------------------------------------------------------------
  // Execution (strictly in height order; commitPath.ts feeds it) and epochs

  /** A block's execution batch is durable: receipts are answerable, consensus gets the root. */
  private onExecuted(height: bigint, stateRoot: Hash, result: ExecutionResult): void {
    this.executedHeightValue = height;
    this.stateRootValue = stateRoot;
    this.metrics.executedHeight.set(Number(height));
    this.mempool.markExecuted(height);
    // No waiter: skip hex-encoding every tx hash of the block (issue 13: 10k per block).
    if (this.executedTx.size > 0)
      for (const r of result.receipts) this.executedTx.resolve(toHex(r.txHash), r);
    this.driver.executed(height, stateRoot);
    for (const l of this.executedListeners) l(height);
    if (isLastHeightOfEpoch(height, this.params.staking.epochLength)) this.epochEndExecuted(height);
  }

  private stageFailed(stage: string, err: unknown): void {
    this.log.fatal({ err: errorMessage(err), stage }, "pipeline stage failed; halting");
    this.health.halt();
  }

  // ---------------------------------------------------------------------------------------------
  // Consensus callbacks

  private onDiverged(height: bigint, ours: Hash, stable: Hash): void {
    this.health.diverge();
    this.metrics.diverged.set(1);
    this.log.error(
      { height: String(height), ours: toHex(ours), stable: toHex(stable) },
      "DIVERGED: our checkpoint differs from the stable one; stopped executing and serving queries",
    );
  }

  /** Ready = validating and caught up; re-evaluated on every tick. */
  private readinessLoop(): void {
    const t = setInterval(() => {
      this.metrics.view.set(Number(this.replica.view));
      this.metrics.peers.set(this.net.connectedCount);
      this.health.refresh(this.replica.status === "validating");
    }, 200);
    t.unref();
    this.stoppers.push(async () => clearInterval(t));
    this.health.refresh(this.replica.status === "validating");
  }

  // ---------------------------------------------------------------------------------------------
  // ApiBackend

  async submitTx(tx: SignedTx, peer?: string): Promise<Hash> {
    this.health.assertServing();
    const follower = this.followerRefusal();
    if (follower !== null) throw follower;
    const t0 = performance.now();
    const res = await this.mempool.add(tx, "api", { peer });
    this.commits.noteSubmitted(res.hashHex, t0);
    return res.hash;
  }

  /** SubmitTxs: one mempool batch (one verifier call), each transaction admitted on its own. */
  async submitTxs(txs: readonly SignedTx[], peer?: string): Promise<SubmitResult[]> {
    this.health.assertServing();
    const error = this.followerRefusal();
    if (error !== null) return txs.map(() => ({ ok: false, error }));
    const t0 = performance.now();
    const at0 = TRACE ? Date.now() : 0;
    const results = await this.mempool.addBatch(txs, "api", { peer });
    if (TRACE) traceAdmitted(this.log, "trace api admitted", at0, results);
    return results.map((r) => {
      if (!r.ok) return { ok: false, error: r.error };
      this.commits.noteSubmitted(r.hashHex, t0);
      return { ok: true, hash: r.hash };
    });
  }

  /**
   * A follower's pool is never gossiped nor proposed from (gossip is signed as a set member):
   * submits are refused at once rather than admitted to wait until their client times out.
   */
  private followerRefusal(): MempoolError | null {
    if (this.replica.selfIndex !== null) return null;
    return new MempoolError(
      "NOT_A_VALIDATOR",
      {},
      `this node is not in epoch ${this.replica.epoch}'s validator set (it follows the chain and serves reads): submit to a validator`,
    );
  }

  waitCommitted(hash: Hash, timeoutMs: number, signal: AbortSignal): Promise<bigint> {
    // Test-only fault, PARABFT_TEST_ACK_BEFORE_COMMIT=1: acknowledge on admission, before any
    // commit, at a guessed height. The container fault suite's S2 checker must catch it.
    if (ACK_BEFORE_COMMIT_FOR_TESTS) return Promise.resolve(this.commits.committedHeight + 1n);
    const hex = toHex(hash);
    return this.committed.wait(hex, timeoutMs, signal, async () => {
      // Read before the lookup: the entry goes once the batch is durable, maybe during it.
      // Storage wins: a tx included again later keeps its first inclusion's height.
      const answered = this.commits.unwritten.heightOf(hex);
      return (await this.db.getTxLocation(hash))?.height ?? answered;
    });
  }

  waitExecuted(hash: Hash, timeoutMs: number, signal: AbortSignal): Promise<Receipt> {
    return this.executedTx.wait(toHex(hash), timeoutMs, signal, () => this.db.getReceipt(hash));
  }

  async getTx(hash: Hash) {
    // Answered at certificate time, not yet durable: from memory (read before the lookup, which
    // may see the batch land), so an answered client finds it.
    const pending = this.commits.unwritten.findTx(toHex(hash));
    return (await this.db.getTx(hash)) ?? pending;
  }

  async getReceipt(hash: Hash): Promise<Receipt | null> {
    this.health.assertQueryable();
    return (await this.db.getReceipt(hash)) ?? null;
  }

  async getBlock(ref: BlockRef): Promise<BlockRecord | null> {
    if ("height" in ref) {
      const d = this.commits.unwritten.block(ref.height);
      if (d) return { height: d.height, digest: d.digest, block: d.block, certificate: d.certificate };
    }
    const stored =
      "height" in ref ? await this.db.getBlock(ref.height) : await this.db.getBlockByDigest(ref.digest);
    if (!stored) return null;
    const certificate = (await this.db.getCertificate(stored.height)) ?? null;
    return { height: stored.height, digest: stored.digest, block: stored.block, certificate };
  }

  // Value and height come from one RocksDB snapshot: never a value of h+1 reported at h.
  async getAccount(address: Uint8Array) {
    this.health.assertQueryable();
    const { height, values } = await this.db.getStateSnapshot([accountKey(address)]);
    const account = decodeAccount(values[0] ?? null);
    return { balance: account.balance, nonce: account.nonce, height };
  }

  async getState(key: Uint8Array) {
    this.health.assertQueryable();
    const { height, values } = await this.db.getStateSnapshot([key]);
    return { value: values[0] ?? null, height };
  }

  async getValidators(epoch: bigint): Promise<ValidatorSetMsg | null> {
    return validatorSetMessage(this.genesis, this.sets, epoch);
  }

  /** DPoS light clients: the proof of the set of `epoch` (src/api/epochProof.ts). */
  async getEpochSetProof(epoch: bigint): Promise<EpochSetProofRecord> {
    this.health.assertQueryable();
    return readEpochSetProof(this.db, this.dposOn ? this.params.staking.epochLength : undefined, epoch);
  }

  async getStatus(): Promise<NodeStatus> {
    return {
      chainId: this.config.chainId,
      validatorIndex: this.config.validatorIndex,
      state: this.health.stateName(),
      committedHeight: this.commits.committedHeight,
      executedHeight: this.executedHeightValue,
      view: this.replica.view,
      primary: this.replica.primary,
      epoch: this.replica.set.epoch,
      stableCheckpoint: this.replica.stableHeight,
      peersConnected: this.net.connectedCount,
      mempoolSize: this.mempool.size,
      stateRoot: this.stateRootValue,
    };
  }

  committedHeight(): bigint {
    return this.commits.committedHeight;
  }

  executedHeight(): bigint {
    return this.executedHeightValue;
  }

  subscribeBlocks(onBlock: (block: BlockRecord) => void): () => void {
    this.blockListeners.add(onBlock);
    return () => this.blockListeners.delete(onBlock);
  }

  subscribeExecuted(onExecuted: (height: bigint) => void): () => void {
    this.executedListeners.add(onExecuted);
    return () => this.executedListeners.delete(onExecuted);
  }

  isReady(): boolean {
    return this.health.isReady();
  }

  onReadyChange(listener: (ready: boolean) => void): () => void {
    return this.health.onReadyChange(listener);
  }
}

export { MempoolError };
