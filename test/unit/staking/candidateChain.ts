// A staking chain for light-client tests: the four genesis validators of `keys` (self stake
// 2,000 + i) and a fifth, keys[4], registered as a candidate with 9,000 before the first election,
// so the election at B(0) brings it in. Returns the reference executor over that state at height 0.
import { ReferenceExecutor } from "../../../src/exec/reference.js";
import { ZERO_ROOT } from "../../../src/exec/result.js";
import { candidateRecord, StakingStore, stakingGenesis } from "../../../src/staking/index.js";
import { addressOf } from "../../../src/types/block.js";
import { toHex } from "../../../src/types/bytes.js";
import { testRules } from "../../property/stakingGen.js";

export function chainWithCandidate(
  keys: readonly { publicKey: Uint8Array }[],
  epochLength: number,
): ReferenceExecutor {
  const state = new Map<string, Uint8Array | null>();
  const kv = {
    read: (k: string) => state.get(k) ?? null,
    write: (k: string, v: Uint8Array | null) => state.set(k, v),
  };
  stakingGenesis(
    kv,
    testRules({ epochLength, maxValidators: 4, minValidators: 2 }),
    keys.slice(0, 4).map((k, i) => ({
      operator: addressOf(k.publicKey),
      consensusKey: k.publicKey,
      peerAddress: `127.0.0.1:${7000 + i}`,
      selfStake: 2000n + BigInt(i),
    })),
  );
  const st = new StakingStore(kv);
  const op = addressOf(keys[4]!.publicKey);
  st.putValidator(
    candidateRecord({
      operator: op,
      consensusKey: keys[4]!.publicKey,
      commissionBps: 0,
      selfStake: 9000n,
      peerAddress: "127.0.0.1:7004",
      registeredEpoch: 0n,
    }),
  );
  st.putOperatorOfKey(keys[4]!.publicKey, op);
  st.putRegistry([...st.registry(), op].sort((a, b) => (toHex(a) < toHex(b) ? -1 : 1)));
  return new ReferenceExecutor({ height: 0n, stateRoot: ZERO_ROOT, state }, { epochHook: { epochLength } });
}
