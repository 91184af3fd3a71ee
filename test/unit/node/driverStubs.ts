// The ConsensusDriver's modules as do-nothing stubs for its unit tests. Each test overrides only
// the members it drives or watches (replica, mempool, net, persist, now, ...), so the members
// every driver needs are stubbed in one place.
import type { StepResult } from "../../../src/consensus/pbft/types.js";
import type { DriverModules } from "../../../src/node/driver.js";

export const noop = (): void => {};

/** A logger that drops everything. */
export const silentLog = { debug: noop, info: noop, warn: noop, error: noop, fatal: noop };

/** DriverModules whose replica does nothing and whose sends, logs and persists go nowhere. */
export function stubDriverModules(overrides: Record<string, unknown> = {}): DriverModules {
  return {
    replica: {
      handle: (): StepResult => ({ actions: [], verdict: null, sender: null }),
      committedHeight: 0n,
    },
    envelopeContext: {},
    mempool: { markBlockInFlight: noop, beginViewChange: noop, endViewChange: noop },
    net: { broadcast: noop, send: noop, penalize: noop },
    log: silentLog,
    onDiverged: noop,
    metrics: null,
    persist: async () => {},
    ...overrides,
  } as unknown as DriverModules;
}
