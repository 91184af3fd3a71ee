// Peer-transport membership across epochs (issue 11). The transport (src/net PeerNetwork) names
// peers by a stable "transport index": a genesis validator keeps its genesis index, any other
// validator (a joiner) gets JOINER_INDEX_BASE + 30 bits of its consensus key, so every node
// derives the same index from the key alone (no history needed). Consensus indices differ per
// epoch; the driver resolves (epoch, index) -> key -> transport index here.
//
// The peers are the members of every set from the previous epoch (leaving members keep serving
// blocks and state transfer for one more epoch) to the latest elected one (new members connect
// before their epoch starts). Endpoints: the node config for genesis peers, else the address the
// validator advertised in RegisterValidator (the election snapshot); the handshake checks the
// consensus key either way.
import type { ValidatorSet } from "../consensus/valset/index.js";
import type { PeerInfo } from "../net/types.js";
import { toHex } from "../types/bytes.js";
import type { LiveEpochSets } from "./dpos.js";

export const JOINER_INDEX_BASE = 0x4000_0000;

/** The transport index of a consensus key: its genesis index, or the joiner index of the key. */
export function transportIndexOf(publicKey: Uint8Array, genesisKeys: readonly Uint8Array[]): number {
  const hex = toHex(publicKey);
  const g = genesisKeys.findIndex((k) => toHex(k) === hex);
  if (g >= 0) return g;
  const u = ((publicKey[0]! << 24) | (publicKey[1]! << 16) | (publicKey[2]! << 8) | publicKey[3]!) >>> 0;
  return JOINER_INDEX_BASE + (u & 0x3fff_ffff);
}

export class Membership {
  private readonly byIndex = new Map<number, Uint8Array>();

  constructor(
    private readonly genesisKeys: readonly Uint8Array[],
    /** Addresses from the node config, by genesis index. */
    private readonly configured: ReadonlyMap<number, string>,
    readonly selfKey: Uint8Array,
  ) {
    for (const [i, k] of genesisKeys.entries()) this.byIndex.set(i, k);
  }

  get selfIndex(): number {
    return transportIndexOf(this.selfKey, this.genesisKeys);
  }

  indexOf(publicKey: Uint8Array): number {
    const i = transportIndexOf(publicKey, this.genesisKeys);
    this.byIndex.set(i, publicKey);
    return i;
  }

  /** The consensus key behind a transport index (known once it was in a set or in genesis). */
  keyOf(index: number): Uint8Array | undefined {
    return this.byIndex.get(index);
  }

  /** Transport index of member `index` of `set`. */
  memberIndex(set: ValidatorSet | undefined, index: number): number | undefined {
    const m = set?.members[index];
    return m === undefined ? undefined : this.indexOf(m.publicKey);
  }

  /**
   * The transport's peers while the core is in `epoch`: the genesis peers of the config (so a
   * node can always reach the chain) and the members of the sets of epoch − 1 … latest.
   */
  peersFor(sets: LiveEpochSets, epoch: bigint): PeerInfo[] {
    const out = new Map<number, PeerInfo>();
    this.genesisKeys.forEach((publicKey, index) => {
      const address = this.configured.get(index);
      if (address !== undefined) out.set(index, { index, publicKey, address });
    });
    const from = epoch > 0n ? epoch - 1n : 0n;
    for (let e = from; e <= sets.latest; e++) {
      const set = sets.get(e);
      if (set === undefined) continue;
      const regs = sets.membersOf(e);
      set.members.forEach((m, i) => {
        const index = this.indexOf(m.publicKey);
        if (index === this.selfIndex || out.has(index)) return;
        const advertised = regs?.[i]?.peerAddress ?? "";
        out.set(index, { index, publicKey: m.publicKey, address: this.configured.get(index) ?? advertised });
      });
    }
    return [...out.values()];
  }
}
