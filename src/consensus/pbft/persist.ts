// Folding SigningRecords into the signing state the driver keeps beside the validator key.
import type { PersistedState, SigningRecord } from "./types.js";

export function emptyPersistedState(): PersistedState {
  return {
    view: 0n,
    viewChangeSent: 0n,
    stableHeight: 0n,
    prePrepares: [],
    prepares: [],
    commits: [],
    checkpoints: [],
  };
}

/**
 * Returns the state after `record` (the input is not modified). Records at or below a stable
 * checkpoint are pruned, except the commit lock, which the replica needs for heights it may still
 * be asked to vote on; those are above the stable height by construction.
 */
export function applySigningRecord(state: PersistedState, record: SigningRecord): PersistedState {
  const s: PersistedState = {
    view: state.view,
    viewChangeSent: state.viewChangeSent,
    stableHeight: state.stableHeight,
    ...(state.stableCert !== undefined ? { stableCert: state.stableCert } : {}),
    prePrepares: state.prePrepares.slice(),
    prepares: state.prepares.slice(),
    commits: state.commits.slice(),
    checkpoints: state.checkpoints.slice(),
  };
  switch (record.kind) {
    case "view":
      if (record.view > s.view) s.view = record.view;
      break;
    case "prePrepare":
      s.prePrepares.push({
        epoch: record.epoch,
        view: record.view,
        height: record.height,
        digest: record.digest,
      });
      break;
    case "prepare":
      s.prepares.push({
        epoch: record.epoch,
        view: record.view,
        height: record.height,
        digest: record.digest,
      });
      break;
    case "commit":
      s.commits.push({
        epoch: record.epoch,
        view: record.view,
        height: record.height,
        digest: record.digest,
        prepared: record.prepared,
      });
      break;
    case "viewChange":
      if (record.newView > s.viewChangeSent) s.viewChangeSent = record.newView;
      break;
    case "checkpoint":
      s.checkpoints.push({
        epoch: record.epoch,
        height: record.height,
        chainHash: record.chainHash,
        stateRoot: record.stateRoot,
      });
      break;
    case "stable": {
      if (record.height <= s.stableHeight) break;
      s.stableHeight = record.height;
      if (record.certificate !== undefined) s.stableCert = record.certificate;
      else delete s.stableCert;
      const h = record.height;
      s.prePrepares = s.prePrepares.filter((r) => r.height > h);
      s.prepares = s.prepares.filter((r) => r.height > h);
      s.commits = s.commits.filter((r) => r.height > h);
      s.checkpoints = s.checkpoints.filter((r) => r.height >= h);
      break;
    }
  }
  return s;
}

export function foldSigningRecords(records: Iterable<SigningRecord>, from?: PersistedState): PersistedState {
  let s = from ?? emptyPersistedState();
  for (const r of records) s = applySigningRecord(s, r);
  return s;
}
