// Decoding a submitted transaction: the first, stateless step of admission.
import { create, fromBinary } from "@bufbuild/protobuf";
import { fastDecodeTxBody } from "../exec/txDecode.js";
import { type SignedTx, SignedTxSchema, type TxBody, TxBodySchema } from "../gen/parabft/v1/types_pb.js";
import { PUBLIC_KEY_LENGTH, SIGNATURE_LENGTH } from "../types/block.js";
import { MempoolError } from "./errors.js";

/** Wire overhead of SignedTx{body, signature}: two tags and two length varints. */
export function encodedSize(bodyLen: number, sigLen: number): number {
  return 2 + varintLen(bodyLen) + bodyLen + varintLen(sigLen) + sigLen;
}

function varintLen(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    len++;
  }
  return len;
}

export function decodeInput(input: Uint8Array | SignedTx): { tx: SignedTx; body: TxBody } {
  let signed: SignedTx;
  try {
    signed = input instanceof Uint8Array ? fromBinary(SignedTxSchema, input) : input;
  } catch (err) {
    throw new MempoolError("MALFORMED", {}, `transaction is not a SignedTx: ${(err as Error).message}`);
  }
  let body: TxBody;
  try {
    // The transfer shape by hand (what fromBinary builds, ~5× cheaper; src/exec/txDecode.ts),
    // anything else through fromBinary: every validator decodes every transaction here (issue 14).
    body = fastDecodeTxBody(signed.body) ?? fromBinary(TxBodySchema, signed.body);
  } catch (err) {
    throw new MempoolError("MALFORMED", {}, `transaction body is not a TxBody: ${(err as Error).message}`);
  }
  if (body.sender.length !== PUBLIC_KEY_LENGTH) {
    throw new MempoolError(
      "MALFORMED",
      {},
      `sender must be a ${PUBLIC_KEY_LENGTH}-byte public key, got ${body.sender.length} bytes`,
    );
  }
  if (signed.signature.length !== SIGNATURE_LENGTH) {
    throw new MempoolError(
      "MALFORMED",
      {},
      `signature must be ${SIGNATURE_LENGTH} bytes, got ${signed.signature.length}`,
    );
  }
  // Rebuild so unknown fields smuggled around the signed body never reach a block.
  return { tx: create(SignedTxSchema, { body: signed.body, signature: signed.signature }), body };
}
