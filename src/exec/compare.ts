// Byte-level comparison of execution results: the differential tests' oracle, also used by
// the benchmark to check every executor it times against the reference.
import { toBinary } from "@bufbuild/protobuf";
import { ReceiptSchema } from "../gen/parabft/v1/types_pb.js";
import { bytesEqual, toHex } from "../types/bytes.js";
import type { ExecutionResult } from "./types.js";

/** null when identical; otherwise a description of the first difference. */
export function diffResults(expected: ExecutionResult, actual: ExecutionResult): string | null {
  if (expected.height !== actual.height) return `height ${expected.height} != ${actual.height}`;
  if (expected.receipts.length !== actual.receipts.length) {
    return `h${expected.height}: ${expected.receipts.length} receipts != ${actual.receipts.length}`;
  }
  for (let i = 0; i < expected.receipts.length; i++) {
    const a = toBinary(ReceiptSchema, expected.receipts[i]!);
    const b = toBinary(ReceiptSchema, actual.receipts[i]!);
    if (!bytesEqual(a, b)) {
      const e = expected.receipts[i]!;
      const g = actual.receipts[i]!;
      return `h${expected.height} receipt ${i}: status ${e.status}/${g.status} error "${e.error}"/"${g.error}" gas ${e.gasUsed}/${g.gasUsed}`;
    }
  }
  if (expected.writeSet.length !== actual.writeSet.length) {
    return `h${expected.height}: write set size ${expected.writeSet.length} != ${actual.writeSet.length}`;
  }
  for (let i = 0; i < expected.writeSet.length; i++) {
    const a = expected.writeSet[i]!;
    const b = actual.writeSet[i]!;
    if (!bytesEqual(a.key, b.key))
      return `h${expected.height} write ${i}: key ${toHex(a.key)} != ${toHex(b.key)}`;
    const same = a.value === null || b.value === null ? a.value === b.value : bytesEqual(a.value, b.value);
    if (!same) return `h${expected.height} write ${toHex(a.key)}: value differs`;
  }
  if (!bytesEqual(expected.stateRoot, actual.stateRoot)) {
    return `h${expected.height}: state root ${toHex(expected.stateRoot)} != ${toHex(actual.stateRoot)}`;
  }
  return null;
}
