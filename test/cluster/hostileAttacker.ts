// The attacker of hostile-clients.test.ts, in a worker thread so its gRPC traffic does not share
// an event loop with the honest clients whose latency the test measures. It pre-signs its traffic,
// posts "ready", waits for "go", attacks for attackMs, and posts the outcome counts.
import { randomBytes } from "node:crypto";
import { parentPort, workerData } from "node:worker_threads";
import {
  computeWorkTx,
  fromHex,
  ParabftClient,
  type PreparedTx,
  signTx,
  TxSigner,
  transferTx,
} from "../../src/client/node.js";
import type { TxBody } from "../../src/gen/parabft/v1/types_pb.js";

/** Distinct pre-signed transactions per attack kind. */
const DISTINCT = 400;

export interface AttackerInput {
  apiAddresses: string[];
  chainId: string;
  /** Hex secret keys. */
  fundedAttacker: string;
  poor: string[];
  recipient: string;
  attackNonce: string;
  rates: Record<AttackKind, number>;
  /** Total attack time: traffic is pre-signed for this long at the given rates. */
  attackMs: number;
  padBytes: number;
}

export type AttackKind = "gapped16k" | "fundedGapped16k" | "unfundedSmall" | "hugeAmount" | "compute";

export interface AttackerResult {
  codes: Record<string, number>;
  admitted: number;
  sent: number;
}

/** The admission code of a refused submit: "submitTx: FAILED_PRECONDITION: UNKNOWN_ACCOUNT: ...". */
export function admissionCode(err: unknown): string {
  const m = /\b[A-Z_]{4,}: ([A-Z_]{4,}):/.exec(String(err));
  return m?.[1] ?? /\b([A-Z_]{4,})\b/.exec(String(err))?.[1] ?? "ERROR";
}

async function main(input: AttackerInput): Promise<void> {
  const { chainId } = input;
  const clients = input.apiAddresses.map((a) => new ParabftClient(a, { deadlineMs: 10_000 }));
  const funded = new TxSigner(fromHex(input.fundedAttacker));
  const poor = input.poor.map((k) => new TxSigner(fromHex(k)));
  const unfunded = Array.from({ length: 5 }, () => TxSigner.generate());
  const fresh = Array.from({ length: 64 }, () => TxSigner.generate());
  const to = fromHex(input.recipient);
  const attackNonce = BigInt(input.attackNonce);
  const pad = (body: TxBody): TxBody => {
    body.access!.reads.push(new Uint8Array(input.padBytes).fill(0x5a));
    return body;
  };
  const build = (kind: AttackKind, i: number): PreparedTx => {
    switch (kind) {
      case "gapped16k": {
        // Finding 2: brand-new keys, nonces 1..1000, ~16 KiB each.
        const k = unfunded[i % unfunded.length]!;
        const nonce = BigInt(1 + (Math.floor(i / unfunded.length) % 1000));
        return signTx(pad(transferTx({ chainId, sender: k.publicKey, nonce }, to, 1n)), k);
      }
      case "fundedGapped16k": {
        const nonce = attackNonce + 1n + BigInt(i % 1000);
        return signTx(pad(transferTx({ chainId, sender: funded.publicKey, nonce }, to, 1n)), funded);
      }
      case "unfundedSmall": {
        // Fresh keys with nonce 0 (a pool of them, so pre-signing stays cheap; amounts differ).
        const k = fresh[i % fresh.length]!;
        return signTx(transferTx({ chainId, sender: k.publicKey, nonce: 0n }, to, BigInt(i + 1)), k);
      }
      case "hugeAmount": {
        const k = i % 2 === 0 ? unfunded[i % unfunded.length]! : funded;
        const nonce = k === funded ? attackNonce : 0n;
        return signTx(transferTx({ chainId, sender: k.publicKey, nonce }, to, 1n << 200n), k);
      }
      case "compute": {
        const k = i % 2 === 0 ? unfunded[i % unfunded.length]! : poor[i % poor.length]!;
        return signTx(
          computeWorkTx({ chainId, sender: k.publicKey, nonce: 0n }, 1_000_000, randomBytes(16)),
          k,
        );
      }
    }
  };
  const kinds = Object.keys(input.rates) as AttackKind[];
  const seconds = input.attackMs / 1000;
  // At most DISTINCT signed transactions per kind, sent in turn: every refusal here happens in
  // admission's pre-checks, before any hash or duplicate check, so a node does the same work for a
  // repeat as for a new one, and pre-signing (slow on a loaded machine) stays short.
  const traffic = new Map(
    kinds.map((kind) => [
      kind,
      Array.from({ length: Math.min(DISTINCT, input.rates[kind] * seconds) }, (_, i) => build(kind, i)),
    ]),
  );
  // "go" starts or resumes the attack, "pause" holds it, "finish" ends it (the parent interleaves
  // attack windows with baseline windows).
  let state: "pause" | "go" | "finish" = "pause";
  parentPort!.on("message", (m: "go" | "pause" | "finish") => {
    state = m;
  });
  parentPort!.postMessage({ ready: true });

  const codes: Record<string, number> = {};
  let admitted = 0;
  let sent = 0;
  await Promise.all(
    kinds.map(async (kind) => {
      const txs = traffic.get(kind)!;
      const total = input.rates[kind] * seconds;
      const perTick = Math.max(1, Math.round(input.rates[kind] / 10));
      for (let i = 0; i < total; i += perTick) {
        while (state === "pause") await new Promise((r) => setTimeout(r, 20));
        if (state === "finish") break;
        const tick = performance.now();
        await Promise.all(
          Array.from({ length: Math.min(perTick, total - i) }, (_, j) => txs[(i + j) % txs.length]!).map(
            async (tx, j) => {
              sent++;
              let code: string;
              try {
                await clients[(i + j) % clients.length]!.submitTx(tx);
                admitted++;
                code = "ADMITTED";
              } catch (err) {
                code = admissionCode(err);
              }
              codes[`${kind}:${code}`] = (codes[`${kind}:${code}`] ?? 0) + 1;
            },
          ),
        );
        const left = 100 - (performance.now() - tick);
        if (left > 0) await new Promise((r) => setTimeout(r, left));
      }
    }),
  );
  for (const c of clients) c.close();
  const result: AttackerResult = { codes, admitted, sent };
  parentPort!.postMessage({ result });
}

if (parentPort && workerData) void main(workerData as AttackerInput);
