// Folding SigningRecords into the signing state the driver keeps beside the validator key.
//
// The persist/sync contract: a record must be durable before any message emitted after it (in
// the same action list or a later one) leaves the node. The driver (src/node/driver.ts) meets it
// by group commit: the core keeps handling events while a sync is in flight, the records of all
// of them go into the next write and sync, and each send waits for the batch holding every record
// emitted before it. What survives a crash is therefore a prefix of the records, and every
// message sent is covered by it, exactly as with one synced append per event.
import { bytesEqual } from "../../types/bytes.js";
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
    bodies: [],
  };
}

/**
 * Returns the state after `record` (the input is not modified). Records and bodies at or below a
 * stable checkpoint are pruned: the replica never votes there again.
 */
export function applySigningRecord(state: PersistedState, record: SigningRecord): PersistedState {
  const s: PersistedState = {
    ...(state.epoch !== undefined ? { epoch: state.epoch } : {}),
    view: state.view,
    viewChangeSent: state.viewChangeSent,
    stableHeight: state.stableHeight,
    ...(state.stableCert !== undefined ? { stableCert: state.stableCert } : {}),
    prePrepares: state.prePrepares.slice(),
    prepares: state.prepares.slice(),
    commits: state.commits.slice(),
    checkpoints: state.checkpoints.slice(),
    bodies: state.bodies,
  };
  switch (record.kind) {
    case "view":
      // A record of a later epoch starts that epoch's views afresh (view 0, no VIEW-CHANGE sent).
      if (enterEpoch(s, record.epoch ?? 0n)) s.view = record.view;
      else if ((record.epoch ?? 0n) === (s.epoch ?? 0n) && record.view > s.view) s.view = record.view;
      break;
    case "prePrepare":
    case "prepare":
      (record.kind === "prePrepare" ? s.prePrepares : s.prepares).push({
        epoch: record.epoch,
        view: record.view,
        height: record.height,
        digest: record.digest,
      });
      if (record.body !== undefined && !s.bodies.some((b) => bytesEqual(b.digest, record.digest))) {
        s.bodies = [...s.bodies, { height: record.height, digest: record.digest, block: record.body }];
      }
      break;
    case "commit":
      s.commits.push({
        epoch: record.epoch,
        view: record.view,
        height: record.height,
        digest: record.digest,
        ...(record.prepared !== undefined ? { prepared: record.prepared } : {}),
      });
      break;
    case "viewChange":
      if (enterEpoch(s, record.epoch)) s.viewChangeSent = record.newView;
      else if (record.epoch === (s.epoch ?? 0n) && record.newView > s.viewChangeSent)
        s.viewChangeSent = record.newView;
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
      s.bodies = s.bodies.filter((b) => b.height > h);
      break;
    }
  }
  return s;
}

/** Moves `s` to a later `epoch` (view and VIEW-CHANGE reset); false when `epoch` is not later. */
function enterEpoch(s: PersistedState, epoch: bigint): boolean {
  if (epoch <= (s.epoch ?? 0n)) return false;
  s.epoch = epoch;
  s.view = 0n;
  s.viewChangeSent = 0n;
  return true;
}

export function foldSigningRecords(records: Iterable<SigningRecord>, from?: PersistedState): PersistedState {
  let s = from ?? emptyPersistedState();
  for (const r of records) s = applySigningRecord(s, r);
  return s;
}
