// Reads TxBody.sender (field 2, bytes) straight from the wire bytes. A full protobuf decode costs
// several times a hash on the admission path; the verify pool only needs the sender. Strict: any
// malformed framing, a field 2 that is not length-delimited, or truncation yields undefined (the
// tx is then invalid). Proto3 "last one wins" applies to a repeated field 2, as in the decoder.
const SENDER_FIELD = 2;

export function txBodySender(body: Uint8Array): Uint8Array | undefined {
  let pos = 0;
  let sender: Uint8Array | undefined;
  const len = body.length;

  const varint = (): number | undefined => {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= len) return undefined;
      const b = body[pos++]!;
      // Beyond 2^53 precision is lost, but such values are only ever skipped or rejected as lengths.
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return result;
      mul *= 128;
    }
    return undefined;
  };

  /** Skips one field's value; returns false on malformed input. */
  const skip = (field: number, wireType: number, depth: number): boolean => {
    switch (wireType) {
      case 0:
        return varint() !== undefined;
      case 1:
        pos += 8;
        return pos <= len;
      case 2: {
        const n = varint();
        if (n === undefined || n > len - pos) return false;
        pos += n;
        return true;
      }
      case 5:
        pos += 4;
        return pos <= len;
      case 3: {
        if (depth > 32) return false;
        for (;;) {
          const tag = varint();
          if (tag === undefined) return false;
          const f = Math.floor(tag / 8);
          const wt = tag & 7;
          if (f === 0) return false;
          if (wt === 4) return f === field;
          if (!skip(f, wt, depth + 1)) return false;
        }
      }
      default:
        return false;
    }
  };

  while (pos < len) {
    const tag = varint();
    if (tag === undefined) return undefined;
    const field = Math.floor(tag / 8);
    const wireType = tag & 7;
    if (field === 0) return undefined;
    if (field === SENDER_FIELD) {
      if (wireType !== 2) return undefined;
      const n = varint();
      if (n === undefined || n > len - pos) return undefined;
      sender = body.subarray(pos, pos + n);
      pos += n;
      continue;
    }
    if (!skip(field, wireType, 0)) return undefined;
  }
  return sender ?? new Uint8Array(0);
}
