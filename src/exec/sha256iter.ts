// Iterated SHA-256 for compute.work without allocating per round. node:crypto's hash() returns
// a fresh Buffer with an external backing store per call; at 10^5–10^6 rounds per block that
// garbage keeps the GC's background threads busy on the core the other worker needs. A digest
// is 32 bytes, so every round after the first hashes exactly one padded 64-byte block, which
// this computes on preallocated word arrays. Checked against node:crypto in the unit tests.
import { hash as nodeHash } from "node:crypto";

const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
  0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
  0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
  0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
  0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
  0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
  0xc67178f2,
]);
const IV = new Uint32Array([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
]);

const W = new Uint32Array(64);
const H = new Uint32Array(8);

/** H := SHA-256 of the 32-byte message held in H (as 8 big-endian words). */
function hashWords32(): void {
  for (let i = 0; i < 8; i++) W[i] = H[i]!;
  W[8] = 0x80000000;
  for (let i = 9; i < 15; i++) W[i] = 0;
  W[15] = 256;
  for (let i = 16; i < 64; i++) {
    const w15 = W[i - 15]!;
    const w2 = W[i - 2]!;
    const s0 = ((w15 >>> 7) | (w15 << 25)) ^ ((w15 >>> 18) | (w15 << 14)) ^ (w15 >>> 3);
    const s1 = ((w2 >>> 17) | (w2 << 15)) ^ ((w2 >>> 19) | (w2 << 13)) ^ (w2 >>> 10);
    W[i] = (W[i - 16]! + s0 + W[i - 7]! + s1) | 0;
  }
  let a = IV[0]!;
  let b = IV[1]!;
  let c = IV[2]!;
  let d = IV[3]!;
  let e = IV[4]!;
  let f = IV[5]!;
  let g = IV[6]!;
  let h = IV[7]!;
  for (let i = 0; i < 64; i++) {
    const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const ch = (e & f) ^ (~e & g);
    const t1 = (h + S1 + ch + K[i]! + W[i]!) | 0;
    const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const maj = (a & b) ^ (a & c) ^ (b & c);
    const t2 = (S0 + maj) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  H[0] = IV[0]! + a;
  H[1] = IV[1]! + b;
  H[2] = IV[2]! + c;
  H[3] = IV[3]! + d;
  H[4] = IV[4]! + e;
  H[5] = IV[5]! + f;
  H[6] = IV[6]! + g;
  H[7] = IV[7]! + h;
}

/** h0 = seed; h(i+1) = SHA-256(h(i)); returns h(iterations) (the seed itself, copied, for 0). */
export function sha256Iterate(seed: Uint8Array, iterations: number): Uint8Array {
  if (iterations === 0) return seed.slice();
  let first = seed;
  let rounds = iterations;
  if (seed.length !== 32) {
    first = nodeHash("sha256", seed, "buffer");
    rounds--;
  }
  for (let i = 0; i < 8; i++) {
    H[i] = (first[4 * i]! << 24) | (first[4 * i + 1]! << 16) | (first[4 * i + 2]! << 8) | first[4 * i + 3]!;
  }
  for (let r = 0; r < rounds; r++) hashWords32();
  const out = new Uint8Array(32);
  for (let i = 0; i < 8; i++) {
    const w = H[i]!;
    out[4 * i] = w >>> 24;
    out[4 * i + 1] = (w >>> 16) & 255;
    out[4 * i + 2] = (w >>> 8) & 255;
    out[4 * i + 3] = w & 255;
  }
  return out;
}
