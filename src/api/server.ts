import { create, type MessageInitShape } from "@bufbuild/protobuf";
import {
  type Deadline,
  type handleServerStreamingCall,
  type handleUnaryCall,
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type ServerWritableStream,
  type ServiceDefinition,
  status,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation } from "grpc-health-check";
import {
  ApiService,
  type GetAccountRequest,
  GetAccountResponseSchema,
  type GetBlockRequest,
  type GetBlockResponse,
  type GetDelegationsRequest,
  GetDelegationsResponseSchema,
  type GetEpochSetProofRequest,
  GetEpochSetProofResponseSchema,
  type GetReceiptRequest,
  GetReceiptResponseSchema,
  type GetStakingValidatorsRequest,
  GetStakingValidatorsResponseSchema,
  type GetStateRequest,
  GetStateResponseSchema,
  GetStatusResponseSchema,
  type GetTxRequest,
  GetTxResponseSchema,
  type GetValidatorsRequest,
  GetValidatorsResponseSchema,
  NodeState,
  type StreamBlocksRequest,
  type SubmitTxAndWaitRequest,
  SubmitTxAndWaitResponseSchema,
  type SubmitTxRequest,
  SubmitTxResponseSchema,
  type SubmitTxsRequest,
} from "../gen/parabft/v1/api_pb.js";
import type { Receipt, SignedTx } from "../gen/parabft/v1/types_pb.js";
import type { Logger } from "../logger/index.js";
import { grpcServiceDefinition } from "../net/grpcAdapter.js";
import { GatedListener } from "../net/listener.js";
import { queryDelegationsAsync, queryValidatorsAsync } from "../staking/query.js";
import { ADDRESS_LENGTH } from "../types/block.js";
import { fromHex as fromHexBytes } from "../types/bytes.js";
import { ParabftError } from "../types/errors.js";
import { HASH_LENGTH, type Hash } from "../types/hash.js";
import type { ApiBackend, BlockRecord, NodeStateName } from "./backend.js";
import {
  blockResponse,
  connectionClosed,
  followBlocks,
  http2StreamOf,
  resetServerStream,
} from "./blockStream.js";
import { type ApiLimitReason, CallLimits } from "./callLimits.js";
import { ApiError, invalidArgument, notFound, toServiceError } from "./errors.js";
import { findProtoDir, loadReflectionPackage } from "./protoFiles.js";
import { checkBatch, submitMany, submitOne } from "./submit.js";

export const API_SERVICE_NAME = ApiService.typeName;

export interface ApiServerOpts {
  /** host:port; port 0 picks a free port (see `port` after start). */
  address: string;
  /** grpc.max_receive_message_length / max_send_message_length. */
  maxMessageBytes: number;
  /** HTTP/2 concurrent streams per connection (grpc.max_concurrent_streams). */
  maxConcurrentStreams: number;
  /** Calls (including open StreamBlocks) one connection may have in progress. */
  maxInFlightPerConnection: number;
  /** Calls (including open StreamBlocks) all connections from one IP address may have in progress. */
  maxInFlightPerAddress: number;
  /** Open TCP connections, all clients together; more are closed at accept. */
  maxConnections: number;
  /** Open TCP connections from one IP address. */
  maxConnectionsPerAddress: number;
  /** New TCP connections per second from one IP address (burst twice this). */
  newConnectionsPerSecondPerAddress: number;
  /** A connection whose calls a cap refused this many times is closed. */
  maxStrikesPerConnection: number;
  /**
   * After a connection is closed for abuse (its strikes, a stream-rate refusal, or its refused
   * submits), new connections from its IP address are refused at accept for this long
   * (`abuse_cooldown`). Connections already open from that address are untouched. 0 turns it off.
   */
  abuseCooldownMs: number;
  /**
   * Repeated abuse from an address within this long of its last cool-down's end doubles the
   * cool-down, up to this; an address clean this long starts again from abuseCooldownMs.
   */
  abuseCooldownMaxMs: number;
  /**
   * A connection whose transaction submits were refused this many times for the transaction's
   * own fault (unfunded or unknown sender, malformed, out of range, past the nonce window, bad
   * signature: REFUSED_SUBMIT_CODES), while fewer than a tenth of its submits were admitted, is
   * closed: spam is answered on its connection, not forever. 0 turns it off.
   */
  maxRefusedSubmitsPerConnection: number;
  /** Open StreamBlocks subscriptions, all clients together. */
  maxStreams: number;
  /** Open StreamBlocks subscriptions from one IP address. */
  maxStreamsPerAddress: number;
  /**
   * New StreamBlocks subscriptions per second from one IP address (burst four times this): each
   * one replays history from storage, so churning streams must not be free.
   */
  newStreamsPerSecondPerAddress: number;
  /**
   * A StreamBlocks subscriber whose send buffer stays full (it stopped reading) this long is
   * dropped with RESOURCE_EXHAUSTED "SLOW_CONSUMER".
   */
  streamStallMs: number;
  /** HTTP/2 keepalive ping interval and ack timeout. */
  keepaliveTimeMs: number;
  keepaliveTimeoutMs: number;
  /** Connections are closed (GOAWAY) after this age, then given the grace period to finish calls. */
  maxConnectionAgeMs: number;
  maxConnectionAgeGraceMs: number;
  /** A connection with no call for this long is closed. */
  maxConnectionIdleMs: number;
  /** SubmitTxAndWait timeout when the request says 0. */
  defaultWaitMs: number;
  maxWaitMs: number;
  maxStateKeyBytes: number;
  /** SubmitTxs: transactions in one call; more is INVALID_ARGUMENT "BATCH_TOO_LARGE". */
  maxSubmitBatchTxs: number;
  /** SubmitTxs: bytes of transactions (bodies + signatures) in one call; more is "BATCH_TOO_LARGE". */
  maxSubmitBatchBytes: number;
  /** Serve server reflection (needs the proto/ directory at run time). Default false. */
  reflection?: boolean;
  /** Where proto/ is; found relative to this module by default. */
  protoDir?: string;
  /** Blocks a StreamBlocks subscriber may have buffered before it falls back to storage reads. */
  streamLookahead?: number;
}

export const apiServerDefaults: Omit<ApiServerOpts, "address"> = {
  maxMessageBytes: 4 * 1024 * 1024,
  maxConcurrentStreams: 100,
  maxInFlightPerConnection: 64,
  maxInFlightPerAddress: 1024,
  maxConnections: 1024,
  maxConnectionsPerAddress: 64,
  newConnectionsPerSecondPerAddress: 20,
  maxStrikesPerConnection: 3,
  abuseCooldownMs: 3_000,
  abuseCooldownMaxMs: 30_000,
  maxRefusedSubmitsPerConnection: 64,
  maxStreams: 256,
  maxStreamsPerAddress: 32,
  newStreamsPerSecondPerAddress: 4,
  streamStallMs: 10_000,
  keepaliveTimeMs: 30_000,
  keepaliveTimeoutMs: 10_000,
  maxConnectionAgeMs: 30 * 60_000,
  maxConnectionAgeGraceMs: 150_000,
  maxConnectionIdleMs: 10 * 60_000,
  defaultWaitMs: 30_000,
  maxWaitMs: 120_000,
  maxStateKeyBytes: 1024,
  maxSubmitBatchTxs: 512,
  maxSubmitBatchBytes: 1024 * 1024,
  reflection: false,
  streamLookahead: 64,
};

export interface ApiMetrics {
  /** One finished call: method name and gRPC status code (0 = OK). */
  call(method: string, code: number, seconds: number): void;
  /** A resource limit refused a connection or call, or dropped a stream. */
  limited?(reason: ApiLimitReason): void;
  /** Open connections and StreamBlocks subscriptions. */
  open?(connections: number, streams: number): void;
}

export interface ApiServerModules {
  backend: ApiBackend;
  log: Logger;
  metrics?: ApiMetrics | null;
}

/** Marks a request grpc-js could not decode, so the handler answers INVALID_ARGUMENT. */
class MalformedRequest {
  constructor(readonly reason: string) {}
}

/**
 * The adapter's definition, with request decoding failures turned into a value: grpc-js would
 * answer a throwing deserializer with INTERNAL, but bad client bytes are INVALID_ARGUMENT.
 */
function tolerantDefinition(): ServiceDefinition {
  const def = grpcServiceDefinition(ApiService);
  for (const m of Object.values(def)) {
    const decode = m.requestDeserialize;
    m.requestDeserialize = (bytes: Buffer) => {
      try {
        return decode(bytes);
      } catch (err) {
        return new MalformedRequest(err instanceof Error ? err.message : String(err));
      }
    };
  }
  return def;
}

const nodeStates: Record<NodeStateName, NodeState> = {
  syncing: NodeState.SYNCING,
  validating: NodeState.VALIDATING,
  diverged: NodeState.DIVERGED,
  halted: NodeState.HALTED,
};

interface CallCtx {
  signal: AbortSignal;
  deadline: Deadline;
  /** The caller's address (grpc-js getPeer()), for per-connection admission limits. */
  peer: string;
  /** The call itself (connection accountability of each transaction in a SubmitTxs). */
  call: object;
}

/**
 * The caller's address, once per HTTP/2 session: grpc-js's getPeer() reads remoteAddress and
 * remotePort through the session's socket proxy on every call, ~1 % of a validator's main thread
 * at open 400 tx/s (one SubmitTx per transaction; issue 14, bench/results/s16-notes.md). A
 * connection's address does not change.
 */
const peerOfSession = new WeakMap<object, string>();
function peerOf(call: { getPeer(): string }): string {
  const session = http2StreamOf(call)?.session;
  if (session === undefined) return call.getPeer();
  let peer = peerOfSession.get(session);
  if (peer === undefined) {
    peer = call.getPeer();
    // "unknown" (no socket at hand) is asked again next time.
    if (peer !== "unknown") peerOfSession.set(session, peer);
  }
  return peer;
}

function requireHash(field: string, bytes: Uint8Array): Hash {
  if (bytes.length !== HASH_LENGTH) {
    throw invalidArgument(field, `must be ${HASH_LENGTH} bytes, got ${bytes.length}`);
  }
  return bytes;
}

function requireTx(tx: SignedTx | undefined): SignedTx {
  if (!tx) throw invalidArgument("tx", "required");
  if (tx.body.length === 0) throw invalidArgument("tx.body", "required");
  return tx;
}

function msUntil(deadline: Deadline): number {
  const t = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(t) ? Math.max(0, t - Date.now()) : Number.POSITIVE_INFINITY;
}

export class ApiServer {
  private server: Server | null = null;
  private listener: GatedListener | null = null;
  private boundPort = 0;
  private readonly health: HealthImplementation;
  private readonly limits: CallLimits;
  /** Open waits and streams, ended on stop so shutdown does not hang on them. */
  private readonly active = new Set<AbortController>();
  private unsubscribeReady: (() => void) | null = null;
  private readonly opts: Required<Omit<ApiServerOpts, "protoDir">> & { protoDir?: string };

  constructor(
    opts: Partial<ApiServerOpts> & { address: string },
    private readonly mod: ApiServerModules,
  ) {
    this.opts = { ...apiServerDefaults, ...opts } as ApiServer["opts"];
    this.health = new HealthImplementation({ "": "NOT_SERVING", [API_SERVICE_NAME]: "NOT_SERVING" });
    this.limits = new CallLimits(this.opts, {
      log: mod.log,
      metrics: mod.metrics,
      strike: (peer, weight) => this.listener?.strike(peer, weight),
      onStreamsChanged: () => this.reportOpen(),
    });
  }

  /** The bound port (after start). */
  get port(): number {
    return this.boundPort;
  }

  async start(): Promise<void> {
    if (this.server) return;
    const o = this.opts;
    const server = new Server({
      // Channelz keeps per-call statistics nobody queries here; it cost ~8 % of a node's CPU
      // per refused request under spam (issue 10's profile).
      "grpc.enable_channelz": 0,
      "grpc.max_receive_message_length": o.maxMessageBytes,
      "grpc.max_send_message_length": o.maxMessageBytes,
      "grpc.max_concurrent_streams": o.maxConcurrentStreams,
      "grpc.keepalive_time_ms": o.keepaliveTimeMs,
      "grpc.keepalive_timeout_ms": o.keepaliveTimeoutMs,
      "grpc.max_connection_age_ms": o.maxConnectionAgeMs,
      "grpc.max_connection_age_grace_ms": o.maxConnectionAgeGraceMs,
      "grpc.max_connection_idle_ms": o.maxConnectionIdleMs,
    });
    server.addService(tolerantDefinition(), this.handlers());
    this.health.addToServer(server);
    if (this.opts.reflection) {
      const pkg = loadReflectionPackage(findProtoDir(this.opts.protoDir));
      new ReflectionService(pkg, { services: [API_SERVICE_NAME, "grpc.health.v1.Health"] }).addToServer(
        server,
      );
    }
    // Connections are counted before grpc-js sees them (global and per-address caps).
    const listener = new GatedListener(
      server,
      ServerCredentials.createInsecure(),
      {
        maxConnections: o.maxConnections,
        maxConnectionsPerAddress: o.maxConnectionsPerAddress,
        newConnectionsPerSecondPerAddress: o.newConnectionsPerSecondPerAddress,
        maxStrikesPerConnection: o.maxStrikesPerConnection,
        abuseCooldownMs: o.abuseCooldownMs,
        abuseCooldownMaxMs: o.abuseCooldownMaxMs,
      },
      {
        log: this.mod.log,
        onRefused: (reason) => this.mod.metrics?.limited?.(reason),
        onCount: () => this.reportOpen(),
      },
    );
    try {
      const { host, port } = splitHostPort(this.opts.address);
      this.boundPort = await listener.listen(host, port);
      this.listener = listener;
    } catch (err) {
      listener.close();
      server.forceShutdown();
      throw new ApiError(
        "UNAVAILABLE",
        { field: "listen.api" },
        `cannot listen on ${this.opts.address}: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    this.server = server;
    const { backend } = this.mod;
    this.setServing(backend.isReady());
    if (backend.onReadyChange) this.unsubscribeReady = backend.onReadyChange((r) => this.setServing(r));
    this.mod.log.info({ address: this.opts.address, port: this.boundPort }, "api listening");
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    // Stop accepting now; calls in progress get the graceful shutdown below, then what is left closes.
    const listener = this.listener;
    this.listener = null;
    listener?.stopAccepting();
    this.unsubscribeReady?.();
    this.unsubscribeReady = null;
    this.setServing(false);
    for (const ac of this.active) ac.abort();
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, 2_000);
      server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
    listener?.close();
  }

  /** Health: SERVING only while the node says it is ready (caught up). */
  setServing(ready: boolean): void {
    const s = ready ? "SERVING" : "NOT_SERVING";
    this.health.setStatus("", s);
    this.health.setStatus(API_SERVICE_NAME, s);
  }

  // -------------------------------------------------------------------------------------------
  // Call plumbing: limits (callLimits.ts), cancellation, status mapping, metrics

  private reportOpen(): void {
    this.mod.metrics?.open?.(this.listener?.open ?? 0, this.limits.streams);
  }

  private finish(method: string, started: number, code: number): void {
    this.mod.metrics?.call(method, code, (performance.now() - started) / 1000);
  }

  private unary<Req, Res>(
    method: string,
    fn: (req: Req, ctx: CallCtx) => Promise<Res>,
  ): handleUnaryCall<Req | MalformedRequest, Res> {
    return (call: ServerUnaryCall<Req | MalformedRequest, Res>, callback) => {
      const started = performance.now();
      let release: () => void = () => {};
      // The abort signal is made only for handlers that wait (SubmitTxAndWait): most calls answer
      // at once, and a controller per call was a measurable share of refusing spam (issue 10).
      let ac: AbortController | null = null;
      // grpc-js reports every unary call "cancelled" when its stream closes, answered or not:
      // aborting then would build a DOMException per call for nothing.
      let answered = false;
      let cancelled = false;
      const active = this.active;
      const ctx: CallCtx = {
        get signal() {
          if (ac === null) {
            ac = new AbortController();
            if (cancelled) ac.abort();
            else active.add(ac);
          }
          return ac.signal;
        },
        deadline: call.getDeadline(),
        peer: peerOf(call),
        call,
      };
      const done = () => {
        answered = true;
        release();
        if (ac !== null) this.active.delete(ac);
      };
      const run = async (): Promise<Res> => {
        const req = call.request;
        if (req instanceof MalformedRequest) throw invalidArgument("request", `malformed: ${req.reason}`);
        release = this.limits.admit(ctx.peer);
        call.on("cancelled", () => {
          if (answered) return;
          cancelled = true;
          ac?.abort();
        });
        return fn(req, ctx);
      };
      const submit = method === "SubmitTx" || method === "SubmitTxAndWait";
      run().then(
        (res) => {
          done();
          this.finish(method, started, 0);
          if (submit) this.limits.recordSubmit(call, ctx.peer, null);
          callback(null, res);
        },
        (err: unknown) => {
          done();
          const se = this.statusOf(err, method);
          this.finish(method, started, se.code);
          callback(se);
          if (submit) this.limits.recordSubmit(call, ctx.peer, err);
        },
      );
    };
  }

  /** The status for a failed call; a wait cut short by stop() reads as UNAVAILABLE. */
  private statusOf(err: unknown, method: string) {
    if (this.server === null && err instanceof ParabftError && err.code === "CANCELLED") {
      return toServiceError(new ApiError("UNAVAILABLE", {}, "the API server is shutting down"));
    }
    const se = toServiceError(err);
    if (se.code === status.INTERNAL) this.mod.log.error({ err, method }, "api call failed");
    return se;
  }

  private handlers(): UntypedServiceImplementation {
    const b = this.mod.backend;
    return {
      submitTx: this.unary("SubmitTx", async (req: SubmitTxRequest, ctx) => {
        const tx = requireTx(req.tx);
        const hash = await submitOne(b, tx, ctx.peer);
        return create(SubmitTxResponseSchema, { txHash: hash });
      }),

      // Each transaction answered on its own (statuses), the call OK unless the batch is malformed
      // or past its bounds; each transaction counts for the connection as a SubmitTx would.
      submitTxs: this.unary("SubmitTxs", async (req: SubmitTxsRequest, ctx) => {
        checkBatch(req.txs, this.opts);
        return submitMany(b, req.txs, ctx.peer, (err) => {
          if (err !== null && toServiceError(err).code === status.INTERNAL)
            this.mod.log.error({ err, method: "SubmitTxs" }, "api call failed");
          this.limits.recordSubmit(ctx.call, ctx.peer, err);
        });
      }),

      submitTxAndWait: this.unary("SubmitTxAndWait", async (req: SubmitTxAndWaitRequest, ctx) => {
        const tx = requireTx(req.tx);
        if (req.timeoutMs > this.opts.maxWaitMs) {
          throw invalidArgument("timeout_ms", `must be at most ${this.opts.maxWaitMs}`);
        }
        const budget = Math.min(req.timeoutMs || this.opts.defaultWaitMs, msUntil(ctx.deadline));
        const until = Date.now() + budget;
        const hash = await submitOne(b, tx, ctx.peer);
        const height = await b.waitCommitted(hash, Math.max(0, until - Date.now()), ctx.signal);
        let receipt: Receipt | undefined;
        if (req.waitExecuted)
          receipt = await b.waitExecuted(hash, Math.max(0, until - Date.now()), ctx.signal);
        return create(SubmitTxAndWaitResponseSchema, { txHash: hash, height, receipt });
      }),

      getTx: this.unary("GetTx", async (req: GetTxRequest) => {
        const rec = await b.getTx(requireHash("tx_hash", req.txHash));
        if (!rec) throw notFound("transaction");
        return create(GetTxResponseSchema, { tx: rec.tx, height: rec.height, index: rec.index });
      }),

      getReceipt: this.unary("GetReceipt", async (req: GetReceiptRequest) => {
        const receipt = await b.getReceipt(requireHash("tx_hash", req.txHash));
        if (!receipt) throw notFound("receipt");
        return create(GetReceiptResponseSchema, { receipt });
      }),

      getBlock: this.unary("GetBlock", async (req: GetBlockRequest) => {
        let rec: BlockRecord | null;
        if (req.by.case === "height") rec = await b.getBlock({ height: req.by.value });
        else if (req.by.case === "digest")
          rec = await b.getBlock({ digest: requireHash("digest", req.by.value) });
        else throw invalidArgument("by", "set height or digest");
        if (!rec) throw notFound("block");
        return blockResponse(rec);
      }),

      getAccount: this.unary("GetAccount", async (req: GetAccountRequest) => {
        if (req.address.length !== ADDRESS_LENGTH) {
          throw invalidArgument("address", `must be ${ADDRESS_LENGTH} bytes, got ${req.address.length}`);
        }
        const acct = await b.getAccount(req.address);
        return create(GetAccountResponseSchema, {
          address: req.address,
          balance: acct.balance.toString(),
          nonce: acct.nonce,
          height: acct.height,
        });
      }),

      getState: this.unary("GetState", async (req: GetStateRequest) => {
        if (req.key.length === 0 || req.key.length > this.opts.maxStateKeyBytes) {
          throw invalidArgument(
            "key",
            `must be 1 to ${this.opts.maxStateKeyBytes} bytes, got ${req.key.length}`,
          );
        }
        const rec = await b.getState(req.key);
        return create(GetStateResponseSchema, {
          key: req.key,
          value: rec.value ?? new Uint8Array(0),
          found: rec.value !== null,
          height: rec.height,
        });
      }),

      getValidators: this.unary("GetValidators", async (req: GetValidatorsRequest) => {
        const set = await b.getValidators(req.epoch);
        if (!set) throw notFound(`validator set of epoch ${req.epoch}`);
        return create(GetValidatorsResponseSchema, { set });
      }),

      getEpochSetProof: this.unary("GetEpochSetProof", async (req: GetEpochSetProofRequest) => {
        if (req.epoch < 2n) {
          throw invalidArgument(
            "epoch",
            `${req.epoch} is a genesis epoch (see GetValidators); proofs start at 2`,
          );
        }
        if (b.getEpochSetProof === undefined) {
          throw new ApiError("NO_EPOCHS", {}, "this node runs without DPoS epochs");
        }
        const p = await b.getEpochSetProof(req.epoch);
        return create(GetEpochSetProofResponseSchema, {
          epoch: p.epoch,
          checkpoint: p.checkpoint,
          previousRoot: p.previousRoot,
          writeSet: p.writeSet.map((w) =>
            w.value === null ? { key: w.key, deleted: true } : { key: w.key, value: w.value },
          ),
        });
      }),

      // Staking views (src/staking/query.ts) over executed state, read through getState.
      getStakingValidators: this.unary("GetStakingValidators", async (req: GetStakingValidatorsRequest) => {
        let height = 0n;
        const get = async (key: Uint8Array) => {
          const rec = await b.getState(key);
          height = rec.height;
          return rec.value;
        };
        const view = await queryValidatorsAsync(get, req.epoch);
        return create(GetStakingValidatorsResponseSchema, {
          epoch: view.epoch,
          firstHeight: view.firstHeight,
          lastHeight: view.lastHeight,
          setKnown: view.setKnown,
          height,
          validators: view.validators.map((v) => ({
            operator: fromHexBytes(v.operator),
            consensusKey: fromHexBytes(v.consensusKey),
            peerAddress: v.peerAddress,
            status: v.status,
            power: v.power.toString(),
            selfStake: v.selfStake.toString(),
            delegated: v.delegated.toString(),
            commissionBps: v.commissionBps,
            jailedUntilEpoch: v.jailedUntil,
          })),
        });
      }),

      getDelegations: this.unary("GetDelegations", async (req: GetDelegationsRequest) => {
        if (req.address.length !== ADDRESS_LENGTH) {
          throw invalidArgument("address", `must be ${ADDRESS_LENGTH} bytes, got ${req.address.length}`);
        }
        let height = 0n;
        const get = async (key: Uint8Array) => {
          const rec = await b.getState(key);
          height = rec.height;
          return rec.value;
        };
        const d = await queryDelegationsAsync(get, req.address);
        return create(GetDelegationsResponseSchema, {
          address: req.address,
          free: d.free.toString(),
          height,
          ballot: d.ballot.map((e) => ({
            validator: fromHexBytes(e.validator),
            shares: e.shares.toString(),
            value: e.value.toString(),
          })),
          unbonding: d.unbonding.map((u) => ({ amount: u.amount.toString(), matureEpoch: u.matureEpoch })),
          exposedTo: [...new Set(d.exposures.map((x) => x.validator))].sort().map(fromHexBytes),
        });
      }),

      getStatus: this.unary("GetStatus", async () => {
        const s = await b.getStatus();
        const init: MessageInitShape<typeof GetStatusResponseSchema> = { ...s, state: nodeStates[s.state] };
        return create(GetStatusResponseSchema, init);
      }),

      streamBlocks: this.streamBlocks(),
    };
  }

  // -------------------------------------------------------------------------------------------
  // StreamBlocks: replay stored blocks from from_height, then follow commits, until cancelled.

  private streamBlocks(): handleServerStreamingCall<
    StreamBlocksRequest | MalformedRequest,
    GetBlockResponse
  > {
    return (call: ServerWritableStream<StreamBlocksRequest | MalformedRequest, GetBlockResponse>) => {
      const started = performance.now();
      const req = call.request;
      // A call queued on a connection a refusal already closed (a client opening streams faster
      // than the caps allow sends dozens at once): nobody can read an answer, so none is built.
      const h2 = http2StreamOf(call);
      if (h2 !== null && connectionClosed(h2)) {
        this.mod.metrics?.limited?.("closed_connection");
        return;
      }
      let release: () => void;
      try {
        if (req instanceof MalformedRequest) throw invalidArgument("request", `malformed: ${req.reason}`);
        release = this.limits.admit(call.getPeer(), true);
      } catch (err) {
        // The refusal closed the connection (a strike-out): no answer can reach it. (Destroying
        // the HTTP/2 session here instead aborted the process inside node's http2: the socket
        // close ends it.)
        if (h2 !== null && connectionClosed(h2)) return;
        const se = toServiceError(err);
        this.finish("StreamBlocks", started, se.code);
        call.emit("error", se);
        return;
      }
      const ac = new AbortController();
      this.active.add(ac);
      followBlocks(
        call,
        req.fromHeight,
        ac.signal,
        { lookahead: this.opts.streamLookahead, stallMs: this.opts.streamStallMs, executed: req.executed },
        { backend: this.mod.backend, onSlowConsumer: () => this.mod.metrics?.limited?.("slow_consumer") },
      )
        .then(
          () => {
            this.finish("StreamBlocks", started, 0);
            if (!call.cancelled) call.end();
          },
          (err: unknown) => {
            const se = this.statusOf(err, "StreamBlocks");
            this.finish("StreamBlocks", started, se.code);
            if (!call.cancelled) call.emit("error", se);
            // The status cannot reach a reader that stopped reading (it queues behind the full
            // buffer): reset the HTTP/2 stream so its buffers are freed now.
            if (err instanceof ApiError && err.code === "SLOW_CONSUMER") resetServerStream(call);
          },
        )
        .finally(() => {
          release();
          this.active.delete(ac);
        });
      call.on("cancelled", () => ac.abort());
    };
  }
}

function splitHostPort(address: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(address);
  if (!m) throw new ApiError("UNAVAILABLE", { field: "listen.api" }, `expected "host:port", got ${address}`);
  return { host: m[1]!.replace(/^\[|\]$/g, ""), port: Number(m[2]) };
}
