// A signing thread of the bench client (signPool.ts): builds and signs bank transfers so the
// thread that paces sends never signs or encodes a transaction (issue 14: the one-thread client
// could not offer 2× saturation on time). Holds the senders' keys it was started with.
import { parentPort, workerData } from "node:worker_threads";
import { signTx, transferTx } from "../../src/client/index.js";
import { nativeSha256 } from "../../src/crypto/hash.js";
import { NodeSigner } from "../../src/crypto/node.js";
import { sha256, toHex, u32be, useSha256 } from "../../src/types/index.js";
import type { SignedBatch, SignRequest, SignWorkerData } from "./signPool.js";

// Transaction hashes and recipients through node:crypto, as the validators hash (src/node), not
// the pure-JS default.
useSha256(nativeSha256);
const data = workerData as SignWorkerData;
const signers = data.secretKeys.map((k) => new NodeSigner(k));

parentPort!.on("message", (req: SignRequest) => {
  const n = req.senders.length;
  const out: SignedBatch = {
    id: req.id,
    bodies: new Array(n),
    signatures: new Array(n),
    hashes: new Array(n),
    hexes: new Array(n),
  };
  for (let k = 0; k < n; k++) {
    const signer = signers[req.senders[k]!]!;
    const p = signTx(
      transferTx(
        { chainId: data.chainId, sender: signer.publicKey, nonce: req.nonces[k]! },
        // Fresh recipients (load.ts recipient): transfers do not contend on one hot account.
        sha256(u32be(req.recipients[k]!)).slice(0, 20),
        1n,
      ),
      signer,
    );
    out.bodies[k] = p.tx.body;
    out.signatures[k] = p.tx.signature;
    out.hashes[k] = p.hash;
    out.hexes[k] = toHex(p.hash);
  }
  parentPort!.postMessage(out);
});
