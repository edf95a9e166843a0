/**
 * AV1 over RTP (AOMedia AV1 RTP payload format §4) as libwebrtc sends it: the
 * temporal delimiter is dropped, OBUs are sent without their size field, an
 * OBU that does not fit is fragmented (Y on the packet it continues from, Z
 * on the next), W counts the elements when there are at most 3 (the last
 * without a length field), and N marks the first packet of a key frame.
 */

function leb128(value: number): number[] {
  const out: number[] = [];
  do {
    let b = value % 128;
    value = Math.floor(value / 128);
    if (value > 0) b |= 0x80;
    out.push(b);
  } while (value > 0);
  return out;
}

/** The OBUs of a temporal unit in the low-overhead format (each with a size field). */
export function av1Obus(tu: Uint8Array): { type: number; data: Uint8Array }[] {
  const obus: { type: number; data: Uint8Array }[] = [];
  for (let off = 0; off < tu.length;) {
    const h = tu[off]!;
    const hl = h & 0x04 ? 2 : 1;
    if (!(h & 0x02)) throw new Error('OBU without a size field in a temporal unit');
    let size = 0;
    let k = 0;
    for (; ; k++) {
      const b = tu[off + hl + k]!;
      size += (b & 0x7f) * 2 ** (7 * k);
      if (!(b & 0x80)) break;
    }
    const end = off + hl + k + 1 + size;
    obus.push({ type: (h >> 3) & 0x0f, data: tu.subarray(off, end) });
    off = end;
  }
  return obus;
}

/** A temporal unit is a key frame when it carries a sequence header (libaom sends one with every key frame). */
export const isAv1Keyframe = (tu: Uint8Array): boolean => av1Obus(tu).some((o) => o.type === 1);

export interface Av1PacketizeOptions {
  /** Largest payload (default 1200). */
  mtu?: number;
  /** `w` (default): W counts up to 3 elements, the last without a length field; `always`: W = 0, every element has one. */
  lengthFields?: 'w' | 'always';
  /** Keep obu_has_size_field and the size in each OBU (the RTP spec allows it; libwebrtc strips them). */
  keepSizeFields?: boolean;
}

/** RTP payloads for one temporal unit. */
export function packetizeAv1(tu: Uint8Array, opts: Av1PacketizeOptions = {}): Uint8Array[] {
  const mtu = opts.mtu ?? 1200;
  const obus = av1Obus(tu)
    .filter((o) => o.type !== 2) // temporal delimiter
    .map((o) => {
      if (opts.keepSizeFields) return o.data;
      // the same OBU without obu_has_size_field and its size
      const h = o.data[0]!;
      const hl = h & 0x04 ? 2 : 1;
      let k = hl;
      while (o.data[k]! & 0x80) k++;
      return Buffer.concat([Uint8Array.of(h & ~0x02), o.data.subarray(1, hl), o.data.subarray(k + 1)]);
    });
  const key = isAv1Keyframe(tu);
  const packets: { elements: Uint8Array[]; z: boolean; y: boolean }[] = [];
  let cur = { elements: [] as Uint8Array[], z: false, y: false };
  let used = 1;
  for (const obu of obus) {
    let rest: Uint8Array = obu;
    while (rest.length > 0) {
      const room = mtu - used - 3; // a length field of up to 3 bytes
      if (room <= 0) {
        packets.push(cur);
        cur = { elements: [], z: false, y: false };
        used = 1;
        continue;
      }
      const piece = rest.subarray(0, room);
      rest = rest.subarray(piece.length);
      cur.elements.push(piece);
      used += piece.length + leb128(piece.length).length;
      if (rest.length > 0) {
        cur.y = true;
        packets.push(cur);
        cur = { elements: [], z: true, y: false };
        used = 1;
      }
    }
  }
  if (cur.elements.length > 0) packets.push(cur);
  return packets.map((p, i) => {
    const w = p.elements.length <= 3 && opts.lengthFields !== 'always' ? p.elements.length : 0;
    const head = (p.z ? 0x80 : 0) | (p.y ? 0x40 : 0) | (w << 4) | (key && i === 0 ? 0x08 : 0);
    const parts: Uint8Array[] = [Uint8Array.of(head)];
    p.elements.forEach((e, k) => {
      if (w === 0 || k < w - 1) parts.push(Uint8Array.from(leb128(e.length)));
      parts.push(e);
    });
    return Buffer.concat(parts);
  });
}
