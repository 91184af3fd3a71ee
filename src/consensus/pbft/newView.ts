// The proposals a NEW-VIEW must carry (PBFT's O computation), recomputed by the new primary and by
// every receiver from the NEW-VIEW's VIEW-CHANGEs: for each height above the highest stable
// checkpoint, the digest of the highest-view prepared certificate, or the null block for a gap.
// Pure; used by the view change (viewChange.ts), the envelope check and the simulator's adversary.
import { create } from "@bufbuild/protobuf";
import {
  type CheckpointCertificate,
  type NewViewProposal,
  NewViewProposalSchema,
  type PreparedCertificate,
  type ViewChange,
} from "../../gen/parabft/v1/consensus_pb.js";
import { nullBlockDigest } from "../../types/block.js";
import type { Epoch } from "./types.js";

/** The proposals a NEW-VIEW must carry, recomputed from its VIEW-CHANGEs (PBFT's O computation). */
export function computeNewViewProposals(
  chainId: string,
  epoch: Epoch,
  viewChanges: readonly ViewChange[],
  /** Heights at or below belong to earlier epochs (epochFloor): never re-proposed. */
  floor = 0n,
): { stable: CheckpointCertificate | undefined; proposals: NewViewProposal[] } {
  let stable: CheckpointCertificate | undefined;
  for (const vc of viewChanges) {
    const s = vc.stableCheckpoint;
    if (s !== undefined && (stable === undefined || s.height > stable.height)) stable = s;
  }
  let low = stable?.height ?? 0n;
  if (floor > low) low = floor;
  const best = new Map<bigint, PreparedCertificate>();
  let high = low;
  for (const vc of viewChanges) {
    for (const pc of vc.prepared) {
      if (pc.height <= low) continue;
      const cur = best.get(pc.height);
      if (cur === undefined || pc.view > cur.view) best.set(pc.height, pc);
      if (pc.height > high) high = pc.height;
    }
  }
  const proposals: NewViewProposal[] = [];
  for (let h = low + 1n; h <= high; h++) {
    const pc = best.get(h);
    proposals.push(
      pc === undefined
        ? create(NewViewProposalSchema, {
            height: h,
            blockDigest: nullBlockDigest(chainId, epoch, h),
            isNull: true,
          })
        : create(NewViewProposalSchema, { height: h, blockDigest: pc.blockDigest, isNull: false }),
    );
  }
  return { stable, proposals };
}
