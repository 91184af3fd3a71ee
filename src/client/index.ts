// The node-free client SDK: builds, signs and hashes transactions and checks finality proofs.
// Nothing reachable from here may import node: builtins or grpc-js (a test walks the graph);
// the gRPC transport lives in ./node.ts.

export { addressOf, txHash } from "../types/block.js";
export { fromHex, toHex } from "../types/bytes.js";
export {
  type CertificateRejectReason,
  type CertificateVerdict,
  type CertifiedSubject,
  verifyCommitCertificate,
} from "./certificate.js";
export {
  type EpochChainRejectReason,
  type EpochChainVerdict,
  EpochSetChain,
  type EpochSetProof,
  type ProofWrite,
  proofStateRoot,
  proofWriteSetHash,
  verifyCheckpointCertificate,
} from "./epochChain.js";
export {
  ClientError,
  type ClientErrorCode,
  GRPC_STATUS_NAMES,
  type GrpcStatusName,
  RpcError,
  type RpcErrorDetail,
} from "./errors.js";
export { NonceManager, type NonceSource } from "./nonces.js";
export {
  decodeTxBody,
  type PreparedTx,
  signTx,
  strictVerify,
  TxSigner,
  verifyTxSignature,
} from "./signer.js";
export {
  type Amount,
  accessList,
  ammSwapTx,
  computeWorkTx,
  delegateTx,
  kvCasTx,
  kvPutTx,
  type RegisterValidatorArgs,
  registerValidatorTx,
  submitEvidenceTx,
  type TxCommon,
  transferTx,
  undelegateTx,
  unjailTx,
  voteTx,
} from "./txBuilder.js";
