// The pure PBFT state machine (DESIGN §2): (state, event) -> actions. No clocks, sockets or disk.
import { checkEnvelope, type EnvelopeContext } from "../envelope.js";
import type { ValidatorSet } from "../valset/index.js";
import type {
  Action,
  Event,
  Height,
  ReplicaConfig,
  ReplicaStatus,
  StepResult,
  Verdict,
  View,
} from "./types.js";

export class Replica {
  private readonly cfg: ReplicaConfig;
  private readonly envCtx: EnvelopeContext;
  private _view: View = 0n;
  private _committed: Height = 0n;
  private _executed: Height = 0n;
  private _stable: Height = 0n;
  private _status: ReplicaStatus = "validating";
  lastVerdict: Verdict | null = null;

  constructor(cfg: ReplicaConfig) {
    this.cfg = cfg;
    this.envCtx = {
      chainId: cfg.chainId,
      sets: cfg.sets,
      verifier: cfg.verifier,
      maxMessageBytes: cfg.maxMessageBytes,
      currentEpoch: cfg.epoch,
    };
  }

  get set(): ValidatorSet {
    const s = this.cfg.sets.get(this.cfg.epoch);
    if (s === undefined) throw new Error(`no validator set for epoch ${this.cfg.epoch}`);
    return s;
  }
  get view(): View {
    return this._view;
  }
  get committedHeight(): Height {
    return this._committed;
  }
  get executedHeight(): Height {
    return this._executed;
  }
  get stableHeight(): Height {
    return this._stable;
  }
  get status(): ReplicaStatus {
    return this._status;
  }

  step(event: Event): Action[] {
    return this.handle(event).actions;
  }

  handle(event: Event): StepResult {
    if (event.kind === "message") {
      const r = checkEnvelope(event.bytes, this.envCtx);
      this.lastVerdict = r.verdict;
      return { actions: [], verdict: r.verdict, sender: r.msg?.sender ?? null };
    }
    return { actions: [], verdict: null, sender: null };
  }
}
