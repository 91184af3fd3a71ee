// Test fixtures: real Ed25519 keys and signatures through node:crypto, the node's verify rule.
import { createPublicKey, generateKeyPairSync, type KeyObject, sign, verify } from "node:crypto";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { gasOf, MIN_GAS_PRICE } from "../../../src/exec/fees.js";
import {
  BankTransferSchema,
  type ProgramCall,
  type SignedTx,
  SignedTxSchema,
  TxBodySchema,
} from "../../../src/gen/parabft/v1/types_pb.js";
import { addressOf, toHex, txSignBytes } from "../../../src/types/index.js";

export const CHAIN = "test-chain";

export interface TestKey {
  publicKey: Uint8Array;
  address: Uint8Array;
  addressHex: string;
  privateKey: KeyObject;
}

export function newKey(): TestKey {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const der = publicKey.export({ format: "der", type: "spki" });
  const raw = new Uint8Array(der.subarray(der.length - 32));
  const address = addressOf(raw);
  return { publicKey: raw, address, addressHex: toHex(address), privateKey };
}

export interface TxOpts {
  nonce?: bigint;
  chainId?: string;
  padding?: number;
  to?: Uint8Array;
  amount?: string;
  /** Gas price; default MIN_GAS_PRICE. */
  fee?: string;
  /** Default: exactly gasOf(call). */
  gasLimit?: bigint;
  /** Replaces the transfer call. */
  call?: ProgramCall["call"];
}

export function signedTx(key: TestKey, opts: TxOpts = {}): SignedTx {
  const call: ProgramCall["call"] = opts.call ?? {
    case: "transfer",
    value: create(BankTransferSchema, {
      to: opts.to ?? new Uint8Array(20).fill(7),
      amount: opts.amount ?? "1",
    }),
  };
  const body = toBinary(
    TxBodySchema,
    create(TxBodySchema, {
      chainId: opts.chainId ?? CHAIN,
      sender: key.publicKey,
      nonce: opts.nonce ?? 0n,
      fee: opts.fee ?? MIN_GAS_PRICE.toString(),
      gasLimit: opts.gasLimit ?? BigInt(gasOf(call)),
      // Padding rides in the access list: it changes the size, not the gas or the fee.
      access: opts.padding ? { reads: [new Uint8Array(opts.padding).fill(0x78)] } : undefined,
      call: { call },
    }),
  );
  const signature = new Uint8Array(sign(null, txSignBytes(body), key.privateKey));
  return create(SignedTxSchema, { body, signature });
}

const spkiPrefix = Buffer.from("302a300506032b6570032100", "hex");

export function verifyOne(tx: SignedTx): boolean {
  try {
    const body = tx.body;
    const { sender } = fromBinary(TxBodySchema, body);
    const key = createPublicKey({ key: Buffer.concat([spkiPrefix, sender]), format: "der", type: "spki" });
    return verify(null, txSignBytes(body), key, tx.signature);
  } catch {
    return false;
  }
}

/** A verifier like the worker pool's, counting calls so tests can see batching. */
export function countingVerifier() {
  const calls: number[] = [];
  const fn = async (txs: readonly SignedTx[]) => {
    calls.push(txs.length);
    return txs.map(verifyOne);
  };
  return { fn, calls };
}
