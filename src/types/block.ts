// Block, transaction and chain hashing rules (DESIGN §2, §4). One place, used everywhere.
import type { BlockHeader, CommitCertificate, SignedTx, Validator } from "../gen/parabft/v1/types_pb.js";
import { bytesEqual, concatBytes, lengthPrefixed, u32be, u64be, utf8Bytes } from "./bytes.js";
import { type Hash, sha256 } from "./hash.js";

const TAG_BLOCK = utf8Bytes("PARABFT/BLOCK/V1\0");
const TAG_NULL = utf8Bytes("null");
const TAG_TXS_ROOT = utf8Bytes("PARABFT/TXS/V1\0");
const TAG_CHAIN = utf8Bytes("PARABFT/CHAIN/V1\0");
const TAG_VALSET = utf8Bytes("PARABFT/VALSET/V1\0");
const TAG_CERT = utf8Bytes("PARABFT/CERT/V1\0");

export const ADDRESS_LENGTH = 20;
export const PUBLIC_KEY_LENGTH = 32;
export const SIGNATURE_LENGTH = 64;

/** A transaction is identified by the hash of the body bytes that were signed. */
export function txHash(tx: SignedTx): Hash {
  return sha256(tx.body);
}

export function txsRoot(txHashes: readonly Hash[]): Hash {
  return sha256(concatBytes(TAG_TXS_ROOT, u32be(txHashes.length), ...txHashes));
}

/**
 * The block digest covers the header (which commits to the transactions through txsRoot)
 * and never the view, so a block re-proposed in a new view keeps its digest.
 */
export function blockDigest(header: BlockHeader): Hash {
  return sha256(
    concatBytes(
      TAG_BLOCK,
      lengthPrefixed(utf8Bytes(header.chainId)),
      u64be(header.height),
      u64be(header.epoch),
      lengthPrefixed(header.txsRoot),
      lengthPrefixed(header.validatorsHash),
      u32be(header.proposer),
      u64be(header.timestampMs),
      lengthPrefixed(header.lastCommitHash),
    ),
  );
}

/** The fixed digest of the null block that fills a gap at `height` after a view change. */
export function nullBlockDigest(chainId: string, epoch: bigint, height: bigint): Hash {
  return sha256(concatBytes(TAG_NULL, lengthPrefixed(utf8Bytes(chainId)), u64be(epoch), u64be(height)));
}

/** chainHash(h) = H(chainHash(h−1), blockDigest(h)); chainHash(0) is 32 zero bytes. */
export function nextChainHash(previous: Hash, digest: Hash): Hash {
  return sha256(concatBytes(TAG_CHAIN, previous, digest));
}

export const GENESIS_CHAIN_HASH: Hash = new Uint8Array(32);

export function validatorsHash(epoch: bigint, validators: readonly Validator[]): Hash {
  const parts: Uint8Array[] = [TAG_VALSET, u64be(epoch), u32be(validators.length)];
  for (const v of validators) parts.push(v.publicKey, u64be(v.power));
  return sha256(concatBytes(...parts));
}

export function commitCertificateHash(cert: CommitCertificate): Hash {
  const parts: Uint8Array[] = [
    TAG_CERT,
    u64be(cert.epoch),
    u64be(cert.height),
    cert.blockDigest,
    u32be(cert.signatures.length),
  ];
  for (const s of cert.signatures) parts.push(u32be(s.validator), s.signature);
  return sha256(concatBytes(...parts));
}

/** Account address: the first 20 bytes of SHA-256 of the Ed25519 public key. */
export function addressOf(publicKey: Uint8Array): Uint8Array {
  return sha256(publicKey).slice(0, ADDRESS_LENGTH);
}

/**
 * The header commits to the body: txsRoot over the carried transactions and lastCommitHash over
 * the carried certificate. The digest covers only the header, so every body, however it arrives
 * (PRE-PREPARE, body fetch, state transfer), must pass this before it is trusted.
 */
export function blockBodyMatchesHeader(block: {
  header?: BlockHeader;
  txs: readonly SignedTx[];
  lastCommit?: CommitCertificate;
}): boolean {
  const h = block.header;
  if (h === undefined) return false;
  const root = txsRoot(block.txs.map((t) => txHash(t)));
  if (!bytesEqual(root, h.txsRoot)) return false;
  const certHash = block.lastCommit ? commitCertificateHash(block.lastCommit) : new Uint8Array(0);
  return bytesEqual(certHash, h.lastCommitHash);
}
