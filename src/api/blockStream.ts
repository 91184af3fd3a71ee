// StreamBlocks' server side: a subscriber follows committed blocks from a height, live blocks
// kept in a bounded lookahead and older ones read from storage, with backpressure (a subscriber
// that stops reading is dropped after a bounded wait, never buffered without limit). Also the
// grpc-js call -> HTTP/2 stream helpers the API server uses to reset or skip dead calls.
import http2 from "node:http2";
import { create } from "@bufbuild/protobuf";
import type { ServerWritableStream } from "@grpc/grpc-js";
import { type GetBlockResponse, GetBlockResponseSchema } from "../gen/parabft/v1/api_pb.js";
import type { ApiBackend, BlockRecord } from "./backend.js";
import { ApiError, notFound } from "./errors.js";

export interface BlockStreamOpts {
  /** Live blocks kept in memory for a subscriber that is behind; older ones come from storage. */
  lookahead: number;
  /** A subscriber whose send buffer stays full this long is dropped (SLOW_CONSUMER). */
  stallMs: number;
  /**
   * StreamBlocksRequest.executed: every message carries the executed height; with no block to
   * send, an update (height 0, only executed_height) goes when the executed height is above what
   * the stream last carried (first when it opens). Off: the messages are those of older nodes.
   */
  executed?: boolean;
}

export interface BlockStreamModules {
  backend: ApiBackend;
  /** Counted when a subscriber is dropped for not reading. */
  onSlowConsumer(): void;
}

export function blockResponse(rec: BlockRecord, executedHeight?: bigint): GetBlockResponse {
  return create(GetBlockResponseSchema, {
    height: rec.height,
    digest: rec.digest,
    block: rec.block ?? undefined,
    certificate: rec.certificate ?? undefined,
    ...(executedHeight !== undefined ? { executedHeight } : {}),
  });
}

/** An executed-height update of a StreamBlocks with executed set (height 0, no block). */
export function executedResponse(executedHeight: bigint): GetBlockResponse {
  return create(GetBlockResponseSchema, { executedHeight });
}

/**
 * Writes committed blocks from `fromHeight` (0: from the next one) to `call` until `signal` aborts;
 * throws SLOW_CONSUMER when the subscriber reads nothing for `stallMs` with its buffer full.
 */
export async function followBlocks(
  call: ServerWritableStream<unknown, GetBlockResponse>,
  fromHeight: bigint,
  signal: AbortSignal,
  opts: BlockStreamOpts,
  mod: BlockStreamModules,
): Promise<void> {
  const b = mod.backend;
  const lookahead = opts.lookahead;
  // 0 means "from the next block": a live tail without history.
  let next = fromHeight === 0n ? b.committedHeight() + 1n : fromHeight;
  let tip = b.committedHeight();
  const recent = new Map<bigint, BlockRecord>();
  let wake: (() => void) | null = null;
  const poke = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  const unsubscribe = b.subscribeBlocks((rec) => {
    if (rec.height > tip) tip = rec.height;
    if (rec.height >= next) {
      recent.set(rec.height, rec);
      // A slow reader keeps only the newest blocks in memory; older ones come from storage.
      if (recent.size > lookahead) recent.delete(recent.keys().next().value!);
    }
    poke();
  });
  // Executed-height updates (opts.executed): -1 = none sent yet, so the first goes at once.
  const withExecuted = opts.executed === true;
  let executedSent = -1n;
  const unsubscribeExecuted = withExecuted ? (b.subscribeExecuted?.(poke) ?? null) : null;
  signal.addEventListener("abort", poke, { once: true });
  try {
    while (!signal.aborted) {
      const committed = b.committedHeight();
      if (committed > tip) tip = committed;
      let msg: GetBlockResponse;
      if (next <= tip) {
        let rec = recent.get(next);
        recent.delete(next);
        rec ??= (await b.getBlock({ height: next })) ?? undefined;
        if (signal.aborted) break;
        if (!rec) throw notFound(`committed block ${next}`);
        next++;
        if (withExecuted) {
          executedSent = b.executedHeight();
          msg = blockResponse(rec, executedSent);
        } else msg = blockResponse(rec);
      } else if (withExecuted && b.executedHeight() > executedSent) {
        executedSent = b.executedHeight();
        msg = executedResponse(executedSent);
      } else {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        continue;
      }
      if (!call.write(msg)) {
        // The subscriber's send buffer is full. Wait for it to drain, but not forever: one that
        // stopped reading is dropped instead of holding buffers (and a stream slot) without bound.
        const drained = await new Promise<boolean>((resolve) => {
          const done = (ok: boolean) => {
            clearTimeout(timer);
            call.off("drain", onDrain);
            signal.removeEventListener("abort", onAbort);
            resolve(ok);
          };
          const onDrain = () => done(true);
          const onAbort = () => done(true);
          const timer = setTimeout(() => done(false), opts.stallMs);
          call.on("drain", onDrain);
          signal.addEventListener("abort", onAbort, { once: true });
        });
        if (!drained) {
          mod.onSlowConsumer();
          throw new ApiError(
            "SLOW_CONSUMER",
            {},
            `the subscriber read nothing for ${opts.stallMs} ms with its buffer full`,
          );
        }
      }
    }
  } finally {
    unsubscribe();
    unsubscribeExecuted?.();
    signal.removeEventListener("abort", poke);
  }
}

/**
 * The HTTP/2 stream of a grpc-js server call. grpc-js has no public way to reach it (nor to abort
 * a call whose writes cannot complete), so this walks its private chain (test/unit/api covers it,
 * so a grpc-js upgrade that moves it fails a test rather than silently leaking).
 */
export function http2StreamOf(call: object): http2.ServerHttp2Stream | null {
  let c: unknown = (call as { call?: unknown }).call;
  for (let i = 0; i < 8 && c && typeof c === "object"; i++) {
    const stream = (c as { stream?: http2.ServerHttp2Stream }).stream;
    if (stream && typeof stream.close === "function") return stream;
    c = (c as { nextCall?: unknown }).nextCall;
  }
  return null;
}

/** The stream's connection is gone: its session destroyed, or its socket (GatedListener.strike). */
export function connectionClosed(stream: http2.ServerHttp2Stream): boolean {
  const session = stream.session;
  if (!session || session.destroyed) return true;
  try {
    return session.socket.destroyed === true;
  } catch {
    return true; // no socket bound any more
  }
}

/** RST_STREAM for a grpc-js server call (see http2StreamOf). */
export function resetServerStream(call: object): boolean {
  const stream = http2StreamOf(call);
  if (stream === null) return false;
  if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_CANCEL);
  return true;
}
