// Per-sender nonce bookkeeping: seeded once from the chain (GetAccount), then incremented
// locally so a client can pipeline many transactions without a round trip each.
import { toHex } from "../types/bytes.js";

/** Returns the next nonce the chain expects from `address` (GetAccount's nonce). */
export type NonceSource = (address: Uint8Array) => Promise<bigint>;

export class NonceManager {
  // A promise per sender so that concurrent first uses seed once, not once per caller.
  readonly #next = new Map<string, Promise<bigint>>();

  constructor(private readonly source: NonceSource) {}

  /** Reserves the next nonce for `address`. */
  async next(address: Uint8Array): Promise<bigint> {
    const k = toHex(address);
    const reserved = this.#next.get(k) ?? this.source(address);
    const following = reserved.then((n) => n + 1n);
    // A rejection is reported to the caller awaiting `reserved`, not as an unhandled one here.
    following.catch(() => {});
    this.#next.set(k, following);
    try {
      return await reserved;
    } catch (err) {
      // A failed seed must not poison later calls.
      if (this.#next.get(k) === following) this.#next.delete(k);
      throw err;
    }
  }

  /** The nonce the next call will hand out, if known locally. */
  async peek(address: Uint8Array): Promise<bigint | undefined> {
    return this.#next.get(toHex(address));
  }

  /** Forgets the local value: the next call re-reads the chain (after BAD_NONCE). */
  resync(address: Uint8Array): void {
    this.#next.delete(toHex(address));
  }

  /** Sets the local value explicitly (e.g. a benchmark that pre-signs a range). */
  set(address: Uint8Array, nextNonce: bigint): void {
    this.#next.set(toHex(address), Promise.resolve(nextNonce));
  }
}
