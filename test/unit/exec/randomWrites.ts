// Shared set-up of the write-set tests (test/unit/exec/resultValues, test/unit/storage/foldOrder):
// a seeded PRNG and a pool of short keys with many shared prefixes, so sorts and merges meet
// repeated keys and keys that are prefixes of others.
import { Rng } from "../../../src/exec/workload.js";

/** A deterministic PRNG (the workload's mulberry32): the same seed gives the same cases on every run. */
export function rng(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.next();
}

/**
 * `size` keys of 1..maxLen bytes drawn from `alphabet` (few symbols: shared prefixes and
 * repeats), as byte arrays.
 */
export function keyPool(
  r: () => number,
  size: number,
  maxLen: number,
  alphabet: readonly number[],
): Uint8Array[] {
  const pool: Uint8Array[] = [];
  for (let i = 0; i < size; i++) {
    const len = 1 + Math.floor(r() * maxLen);
    pool.push(Uint8Array.from({ length: len }, () => alphabet[Math.floor(r() * alphabet.length)]!));
  }
  return pool;
}

/** A key of the pool chosen by `r`. */
export function pick<T>(pool: readonly T[], r: () => number): T {
  return pool[Math.floor(r() * pool.length)]!;
}
