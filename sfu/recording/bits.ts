/** Bit-level reading of codec headers (H.264 SPS, VP9 uncompressed header, AV1 sequence header) and AV1's LEB128. */

/** Reads big-endian bit fields; throws a RangeError past the end (callers catch it as "malformed"). */
export class BitReader {
  #pos = 0;
  constructor(private readonly data: Uint8Array) {}

  bit(): number {
    const byte = this.data[this.#pos >> 3];
    if (byte === undefined) throw new RangeError('header truncated');
    return (byte >> (7 - (this.#pos++ & 7))) & 1;
  }

  bits(n: number): number {
    let v = 0;
    for (let i = 0; i < n; i++) v = v * 2 + this.bit();
    return v;
  }

  /** H.264 ue(v), unsigned Exp-Golomb (§9.1). */
  ue(): number {
    let zeros = 0;
    while (this.bit() === 0) if (++zeros > 31) throw new RangeError('bad Exp-Golomb code');
    return 2 ** zeros - 1 + this.bits(zeros);
  }

  /** H.264 se(v), signed Exp-Golomb (§9.1.1). */
  se(): number {
    const v = this.ue();
    return v & 1 ? (v + 1) / 2 : -v / 2;
  }

  /** AV1 uvlc() (§4.10.3). */
  uvlc(): number {
    let zeros = 0;
    while (this.bit() === 0) if (++zeros >= 32) return 2 ** 32 - 1;
    return 2 ** zeros - 1 + this.bits(zeros);
  }
}

/** An unsigned LEB128 value (AV1 §4.10.5) at `offset`: its value and length in bytes, or null when malformed. */
export function readLeb128(data: Uint8Array, offset: number): { value: number; length: number } | null {
  let value = 0;
  for (let i = 0; i < 8; i++) {
    const b = data[offset + i];
    if (b === undefined) return null;
    value += (b & 0x7f) * 2 ** (7 * i);
    if (!(b & 0x80)) return value <= 0xffffffff ? { value, length: i + 1 } : null;
  }
  return null;
}

/** `value` as unsigned LEB128 (shortest form). */
export function leb128(value: number): Uint8Array {
  const out: number[] = [];
  do {
    let b = value % 128;
    value = Math.floor(value / 128);
    if (value > 0) b |= 0x80;
    out.push(b);
  } while (value > 0);
  return Uint8Array.from(out);
}
