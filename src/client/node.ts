// The Node.js transport of the SDK: ParabftClient over @grpc/grpc-js, using the same
// generated service descriptor as the server (src/net/grpcAdapter.ts). Browser users take the
// node-free core from ./index.ts and bring their own transport.
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  ApiService,
  GetAccountRequestSchema,
  GetBlockRequestSchema,
  type GetBlockResponse,
  GetDelegationsRequestSchema,
  type GetDelegationsResponse,
  GetEpochSetProofRequestSchema,
  type GetEpochSetProofResponse,
  GetReceiptRequestSchema,
  GetStakingValidatorsRequestSchema,
  type GetStakingValidatorsResponse,
  GetStateRequestSchema,
  type GetStateResponse,
  GetStatusRequestSchema,
  type GetStatusResponse,
  GetTxRequestSchema,
  type GetTxResponse,
  GetValidatorsRequestSchema,
  StreamBlocksRequestSchema,
  SubmitTxAndWaitRequestSchema,
  type SubmitTxAndWaitResponse,
  SubmitTxRequestSchema,
  type SubmitTxResponse,
  SubmitTxsRequestSchema,
  type SubmitTxsResponse,
} from "../gen/parabft/v1/api_pb.js";
import type { Receipt, SignedTx, TxBody, ValidatorSet } from "../gen/parabft/v1/types_pb.js";
import { grpcServiceDefinition } from "../net/grpcAdapter.js";
import { addressOf } from "../types/block.js";
import type { MessageSigner } from "../types/signing.js";
import type { CertificateVerdict } from "./certificate.js";
import type { EpochChainVerdict, EpochSetChain, EpochSetProof } from "./epochChain.js";
import { ClientError, RpcError } from "./errors.js";
import { NonceManager } from "./nonces.js";
import { type PreparedTx, signTx } from "./signer.js";

export * from "./index.js";

const ApiClient = grpc.makeGenericClientConstructor(grpcServiceDefinition(ApiService), "ApiService");

type Callback<R> = (err: grpc.ServiceError | null, res?: R) => void;
type UnaryFn = (req: unknown, meta: grpc.Metadata, opts: grpc.CallOptions, cb: Callback<unknown>) => void;

export interface ParabftClientOpts {
  /** Deadline for a unary call (not for submitAndWait, which adds its own wait). Default 10 s. */
  deadlineMs?: number;
  /** Extra grpc-js channel options (e.g. a shared subchannel pool off for many connections). */
  channelOptions?: grpc.ChannelOptions;
}

export interface AccountInfo {
  address: Uint8Array;
  balance: bigint;
  /** The next nonce the chain expects from this account. */
  nonce: bigint;
  /** Executed height this answer reflects. */
  height: bigint;
}

/** ParabftClient.verifyBlockFromGenesis: where the check stopped, with the verdict. */
export type VerifiedBlock =
  | { ok: true; block: GetBlockResponse; epoch: bigint; verdict: CertificateVerdict & { ok: true } }
  | { ok: false; stage: "set"; verdict: EpochChainVerdict & { ok: false } }
  | { ok: false; stage: "certificate"; verdict: CertificateVerdict & { ok: false }; block: GetBlockResponse };

export interface SubmitAndWaitOpts {
  /** Server-side wait bound; 0 = the server default. */
  timeoutMs?: number;
  /** Also wait for execution and return the receipt. */
  waitExecuted?: boolean;
}

export interface CommittedTx {
  txHash: Uint8Array;
  height: bigint;
  receipt: Receipt | undefined;
}

export interface SendOpts extends SubmitAndWaitOpts {
  /** Wait for commit (SubmitTxAndWait) instead of returning on admission. */
  wait?: boolean;
}

export interface SentTx {
  prepared: PreparedTx;
  /** Present with `wait`. */
  height?: bigint;
  receipt?: Receipt | undefined;
}

/**
 * One transaction's answer in a submitTxs call: its hash (admitted, or already pending or
 * committed), or the refusal SubmitTx would have thrown for it, as an RpcError.
 */
export type TxSubmitOutcome = { ok: true; txHash: Uint8Array } | { ok: false; error: RpcError };

export interface StreamOpts {
  signal?: AbortSignal;
  /**
   * Ask for the executed height too (StreamBlocksRequest.executed): every message then carries
   * `executedHeight`, and messages with height 0 are executed-height updates, not blocks. A node
   * that predates the field ignores it (no message carries `executedHeight`).
   */
  executed?: boolean;
}

const MAX_MESSAGE_BYTES = 8 * 1024 * 1024;

/** Whether an error is the API's stale or far-ahead nonce rejection (the cue to resync nonces). */
export function isNonceError(err: unknown): boolean {
  return err instanceof RpcError && /\b(BAD_NONCE|NONCE_GAP)\b/.test(err.serverMessage);
}

export class ParabftClient {
  readonly address: string;
  readonly nonces: NonceManager;
  readonly #client: grpc.Client;
  readonly #deadlineMs: number;

  constructor(address: string, opts: ParabftClientOpts = {}) {
    this.address = address;
    this.#deadlineMs = opts.deadlineMs ?? 10_000;
    this.#client = new ApiClient(address, grpc.credentials.createInsecure(), {
      // Per-call statistics nobody queries; a measurable share of a small call's CPU.
      "grpc.enable_channelz": 0,
      "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
      "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
      ...opts.channelOptions,
    });
    this.nonces = new NonceManager(async (addr) => (await this.getAccount(addr)).nonce);
  }

  #unary<R>(method: string, req: unknown, deadlineMs = this.#deadlineMs): Promise<R> {
    const fn = (this.#client as unknown as Record<string, UnaryFn>)[method]!;
    return new Promise<R>((resolve, reject) => {
      fn.call(this.#client, req, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (err, res) =>
        err ? reject(toRpcError(method, err)) : resolve(res as R),
      );
    });
  }

  /** Resolves once the channel is connected; rejects after `timeoutMs`. */
  waitForReady(timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#client.waitForReady(Date.now() + timeoutMs, (err) =>
        err ? reject(new RpcError(grpc.status.UNAVAILABLE, "waitForReady", err.message)) : resolve(),
      );
    });
  }

  async submitTx(tx: SignedTx | PreparedTx): Promise<Uint8Array> {
    const res = await this.#unary<SubmitTxResponse>(
      "submitTx",
      create(SubmitTxRequestSchema, { tx: "tx" in tx ? tx.tx : tx }),
    );
    return res.txHash;
  }

  /**
   * Submits many transactions in one call (SubmitTxs): one outcome per transaction, in order, each
   * admitted or refused on its own exactly as submitTx would (OVERLOADED, BAD_NONCE, ...: the
   * outcome's RpcError carries the status and the server's message). The call itself fails only
   * as a whole: INVALID_ARGUMENT "BATCH_TOO_LARGE" past the server's bounds (by default 512
   * transactions and 1 MiB), or a transport or node-state error (nothing was admitted then).
   */
  async submitTxs(txs: readonly (SignedTx | PreparedTx)[]): Promise<TxSubmitOutcome[]> {
    const res = await this.#unary<SubmitTxsResponse>(
      "submitTxs",
      create(SubmitTxsRequestSchema, { txs: txs.map((tx) => ("tx" in tx ? tx.tx : tx)) }),
    );
    if (res.statuses.length !== txs.length) {
      throw new ClientError(
        "BAD_ARGUMENT",
        { field: "statuses" },
        `server answered ${res.statuses.length} statuses for ${txs.length} transactions`,
      );
    }
    return res.statuses.map((st) =>
      st.code === grpc.status.OK
        ? { ok: true, txHash: st.txHash }
        : { ok: false, error: new RpcError(st.code, "submitTxs", st.message) },
    );
  }

  /** Submits and returns when committed (and, with waitExecuted, executed with its receipt). */
  async submitAndWait(tx: SignedTx | PreparedTx, opts: SubmitAndWaitOpts = {}): Promise<CommittedTx> {
    const timeoutMs = opts.timeoutMs ?? 0;
    const res = await this.#unary<SubmitTxAndWaitResponse>(
      "submitTxAndWait",
      create(SubmitTxAndWaitRequestSchema, {
        tx: "tx" in tx ? tx.tx : tx,
        timeoutMs,
        waitExecuted: opts.waitExecuted ?? false,
      }),
      // The server bounds the wait; the client deadline only guards against a dead server.
      (timeoutMs || 30_000) + this.#deadlineMs,
    );
    return { txHash: res.txHash, height: res.height, receipt: res.receipt };
  }

  /**
   * Builds, signs and submits a transaction with the sender's next nonce from `nonces`. On a
   * stale or far-ahead nonce rejection it re-reads the nonce from the chain and retries once.
   */
  async send(signer: MessageSigner, build: (nonce: bigint) => TxBody, opts: SendOpts = {}): Promise<SentTx> {
    const address = addressOf(signer.publicKey);
    const attempt = async (): Promise<SentTx> => {
      const prepared = signTx(build(await this.nonces.next(address)), signer);
      if (!opts.wait) {
        await this.submitTx(prepared);
        return { prepared };
      }
      const r = await this.submitAndWait(prepared, opts);
      return { prepared, height: r.height, receipt: r.receipt };
    };
    try {
      return await attempt();
    } catch (err) {
      if (!isNonceError(err)) throw err;
      this.nonces.resync(address);
      return attempt();
    }
  }

  /** The committed transaction and its position, or null when the node does not know it. */
  getTx(txHash: Uint8Array): Promise<GetTxResponse | null> {
    return orNull(this.#unary("getTx", create(GetTxRequestSchema, { txHash })));
  }

  /** The receipt once executed, or null when not (yet) executed. */
  async getReceipt(txHash: Uint8Array): Promise<Receipt | null> {
    const res = await orNull(
      this.#unary<{ receipt?: Receipt }>("getReceipt", create(GetReceiptRequestSchema, { txHash })),
    );
    return res?.receipt ?? null;
  }

  /** A block with its commit certificate (block absent for a null block), or null if unknown. */
  getBlock(by: { height: bigint } | { digest: Uint8Array }): Promise<GetBlockResponse | null> {
    const req = create(GetBlockRequestSchema, {
      by: "height" in by ? { case: "height", value: by.height } : { case: "digest", value: by.digest },
    });
    return orNull(this.#unary("getBlock", req));
  }

  async getAccount(address: Uint8Array): Promise<AccountInfo> {
    const res = await this.#unary<{ address: Uint8Array; balance: string; nonce: bigint; height: bigint }>(
      "getAccount",
      create(GetAccountRequestSchema, { address }),
    );
    let balance: bigint;
    try {
      balance = BigInt(res.balance || "0");
    } catch {
      throw new ClientError(
        "BAD_ARGUMENT",
        { field: "balance" },
        `server sent a bad balance '${res.balance}'`,
      );
    }
    return { address: res.address, balance, nonce: res.nonce, height: res.height };
  }

  getState(key: Uint8Array): Promise<GetStateResponse> {
    return this.#unary("getState", create(GetStateRequestSchema, { key }));
  }

  async getValidators(epoch: bigint): Promise<ValidatorSet> {
    const res = await this.#unary<{ set?: ValidatorSet }>(
      "getValidators",
      create(GetValidatorsRequestSchema, { epoch }),
    );
    if (res.set === undefined)
      throw new RpcError(grpc.status.NOT_FOUND, "getValidators", `no set for ${epoch}`);
    return res.set;
  }

  /**
   * DPoS: the proof of the validator set of `epoch` (≥ 2) for EpochSetChain.addProof. The node
   * does not vouch for it: the chain checks it against the set two epochs before. Server codes:
   * INVALID_ARGUMENT (epoch 0 or 1), NO_EPOCHS, EPOCH_NOT_FINAL, PROOF_UNAVAILABLE.
   */
  async getEpochSetProof(epoch: bigint): Promise<EpochSetProof> {
    const res = await this.#unary<GetEpochSetProofResponse>(
      "getEpochSetProof",
      create(GetEpochSetProofRequestSchema, { epoch }),
    );
    if (res.checkpoint === undefined) {
      throw new ClientError(
        "BAD_ARGUMENT",
        { field: "checkpoint" },
        "server sent a proof without a checkpoint",
      );
    }
    return {
      epoch: res.epoch,
      checkpoint: res.checkpoint,
      previousRoot: res.previousRoot,
      writeSet: res.writeSet.map((w) => ({ key: w.key, value: w.deleted ? null : w.value })),
    };
  }

  /**
   * A light client's check of the block at `height`: syncs `chain` (holding at least the genesis
   * set) from genesis up to the height's epoch with proofs from this node, then verifies the
   * block's commit certificate against its own epoch's proven set. Trusts nothing the node says
   * beyond what the proofs and signatures show.
   */
  async verifyBlockFromGenesis(chain: EpochSetChain, height: bigint): Promise<VerifiedBlock> {
    const epoch = chain.epochOf(height);
    const synced = await chain.syncTo(epoch, (e) => this.getEpochSetProof(e));
    if (!synced.ok) return { ok: false, stage: "set", verdict: synced };
    const block = await this.getBlock({ height });
    if (block === null) throw new RpcError(grpc.status.NOT_FOUND, "getBlock", `no block at ${height}`);
    if (block.certificate === undefined) {
      throw new ClientError(
        "BAD_ARGUMENT",
        { field: "certificate" },
        `block ${height} came without a certificate`,
      );
    }
    const cert = block.certificate;
    // The certificate must be of the height asked for and of that height's own epoch (a block
    // above a boundary never carries the old set's certificate).
    if (cert.height !== height || cert.epoch !== epoch) {
      const verdict = {
        ok: false as const,
        reason: cert.height !== height ? ("HEIGHT_MISMATCH" as const) : ("EPOCH_MISMATCH" as const),
        message: `asked for height ${height} (epoch ${epoch}), got a certificate of ${cert.height} (epoch ${cert.epoch})`,
      };
      return { ok: false, stage: "certificate", verdict, block };
    }
    const subject = block.block?.header
      ? { kind: "block" as const, header: block.block.header }
      : { kind: "null" as const, epoch, height };
    const verdict = chain.verify(subject, cert);
    return verdict.ok
      ? { ok: true, block, epoch, verdict }
      : { ok: false, stage: "certificate", verdict, block };
  }

  /** Staking view of the registered validators for `epoch` (default: the executing epoch). */
  getStakingValidators(epoch?: bigint): Promise<GetStakingValidatorsResponse> {
    return this.#unary("getStakingValidators", create(GetStakingValidatorsRequestSchema, { epoch }));
  }

  /** An address's bonded stake, ballot and unbonding queue. */
  getDelegations(address: Uint8Array): Promise<GetDelegationsResponse> {
    return this.#unary("getDelegations", create(GetDelegationsRequestSchema, { address }));
  }

  getStatus(): Promise<GetStatusResponse> {
    return this.#unary("getStatus", create(GetStatusRequestSchema, {}));
  }

  /**
   * Committed blocks from `fromHeight` on, in order, following new ones until the consumer
   * stops iterating, the signal aborts or the server ends the stream. Breaking out of the loop
   * cancels the call.
   */
  async *streamBlocks(fromHeight: bigint, opts: StreamOpts = {}): AsyncGenerator<GetBlockResponse> {
    const fn = (
      this.#client as unknown as Record<string, (req: unknown) => grpc.ClientReadableStream<unknown>>
    ).streamBlocks!;
    const call = fn.call(
      this.#client,
      create(StreamBlocksRequestSchema, { fromHeight, executed: opts.executed === true }),
    );
    let cancelledByUs = false;
    const onAbort = () => {
      cancelledByUs = true;
      call.cancel();
    };
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      for await (const msg of call) yield msg as GetBlockResponse;
    } catch (err) {
      if (cancelledByUs && (err as grpc.ServiceError).code === grpc.status.CANCELLED) return;
      throw toRpcError("streamBlocks", err);
    } finally {
      opts.signal?.removeEventListener("abort", onAbort);
      cancelledByUs = true;
      call.cancel();
    }
  }

  close(): void {
    this.#client.close();
  }
}

function toRpcError(method: string, err: unknown): RpcError {
  const e = err as Partial<grpc.ServiceError>;
  if (typeof e?.code === "number") return new RpcError(e.code, method, e.details || e.message || "");
  return new RpcError(grpc.status.UNKNOWN, method, err instanceof Error ? err.message : String(err));
}

async function orNull<R>(p: Promise<R>): Promise<R | null> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof RpcError && err.status === grpc.status.NOT_FOUND) return null;
    throw err;
  }
}
