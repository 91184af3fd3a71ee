// Epoch arithmetic shared by the consensus core, the simulator and the node (DESIGN §6). Pure.
// Epoch e covers the heights h with floor(h / epochLength) == e (height 0 is genesis); its last
// height B(e) = (e + 1) × epochLength − 1 is a checkpoint, and the set of e never orders above it.
// src/staking/epoch.ts uses the same arithmetic (`epochOfHeight`, `isLastHeightOfEpoch`).

export function epochOfHeight(height: bigint, epochLength: number): bigint {
  return height / BigInt(epochLength);
}

export function isLastHeightOfEpoch(height: bigint, epochLength: number): boolean {
  return height % BigInt(epochLength) === BigInt(epochLength - 1);
}

/** B(e): the last height of epoch e (the boundary to e + 1). */
export function lastHeightOfEpoch(epoch: bigint, epochLength: number): bigint {
  return (epoch + 1n) * BigInt(epochLength) - 1n;
}

/** Heights at or below this belong to earlier epochs: B(e − 1), or 0 for epoch 0. */
export function epochFloor(epoch: bigint, epochLength: number | undefined): bigint {
  if (epochLength === undefined || epoch === 0n) return 0n;
  return epoch * BigInt(epochLength) - 1n;
}

/** Epoch lengths must be whole multiples of the checkpoint interval (so B(e) + 1 is a checkpoint too). */
export function epochLengthProblem(epochLength: number, checkpointInterval: number): string | null {
  if (!Number.isSafeInteger(epochLength) || epochLength < 2) return "epochLength must be an integer >= 2";
  if (epochLength % checkpointInterval !== 0)
    return `epochLength ${epochLength} is not a multiple of checkpointInterval ${checkpointInterval}`;
  return null;
}
