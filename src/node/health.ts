// A validator's health (README "Health"): halted (a pipeline stage failed, or the node stopped),
// diverged (its checkpoint differs from the stable one), ready (validating and caught up). The
// state GetStatus reports and the requests the API refuses follow from these.
import type { NodeStatus } from "../api/backend.js";
import { ParabftError } from "../types/errors.js";

export interface NodeHealthModules {
  /** The public API serves only while the node is ready (undefined before it starts). */
  setServing(ready: boolean): void;
  /** The consensus core's status ("validating", "following", "diverged", ...). */
  coreStatus(): string;
}

export class NodeHealth {
  private haltedValue = false;
  private divergedValue = false;
  private readyValue = false;
  private readonly readyListeners = new Set<(ready: boolean) => void>();
  private resolveReady!: () => void;
  private rejectReady!: (err: Error) => void;
  /** Resolves the first time the node is ready; rejects if it stops before. */
  readonly ready: Promise<void>;

  constructor(private readonly mod: NodeHealthModules) {
    this.ready = new Promise((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    this.ready.catch(() => {});
  }

  /** The node is stopping: halted, not ready, and `ready` rejects if it never was. */
  stopped(): void {
    this.halt();
    this.rejectReady(new Error("node stopped"));
  }

  /** A failed stage or a stop: the node answers nobody and takes no transactions. */
  get halted(): boolean {
    return this.haltedValue;
  }

  /** Our checkpoint differs from the stable one: no state queries until repaired. */
  get diverged(): boolean {
    return this.divergedValue;
  }

  /** A pipeline stage failed (or the node stops): not ready from now on. */
  halt(): void {
    this.haltedValue = true;
    this.setReady(false);
  }

  /** Our checkpoint differs from the stable one: not ready from now on. */
  diverge(): void {
    this.divergedValue = true;
    this.setReady(false);
  }

  /** Ready = validating (the core's word) and neither halted nor diverged. */
  refresh(validating: boolean): void {
    this.setReady(!this.halted && !this.diverged && validating);
  }

  private setReady(ready: boolean): void {
    if (ready === this.readyValue) return;
    this.readyValue = ready;
    if (ready) this.resolveReady();
    this.mod.setServing(ready);
    for (const l of this.readyListeners) l(ready);
  }

  isReady(): boolean {
    return this.readyValue;
  }

  onReadyChange(listener: (ready: boolean) => void): () => void {
    this.readyListeners.add(listener);
    return () => this.readyListeners.delete(listener);
  }

  stateName(): NodeStatus["state"] {
    if (this.halted) return "halted";
    if (this.diverged || this.mod.coreStatus() === "diverged") return "diverged";
    return this.mod.coreStatus() === "validating" ? "validating" : "syncing";
  }

  assertServing(): void {
    if (this.halted || this.diverged) {
      throw new ParabftError(
        this.halted ? "HALTED" : "DIVERGED",
        {},
        `node is ${this.stateName()}: not accepting transactions`,
      );
    }
  }

  /** A diverged replica must not serve state it cannot vouch for. */
  assertQueryable(): void {
    if (this.diverged)
      throw new ParabftError("DIVERGED", {}, "node diverged: queries disabled until repaired");
  }
}
