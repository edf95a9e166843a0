/** Extracts the packets of the first logical stream of an Ogg file (enough for Opus fixtures). */
export function oggPackets(data: Uint8Array): Uint8Array[] {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const packets: Uint8Array[] = [];
  let partial: Buffer[] = [];
  for (let off = 0; off + 27 <= buf.length;) {
    if (buf.toString('latin1', off, off + 4) !== 'OggS') throw new Error(`bad Ogg page at ${off}`);
    const segments = buf[off + 26]!;
    const table = buf.subarray(off + 27, off + 27 + segments);
    let body = off + 27 + segments;
    for (const lacing of table) {
      partial.push(buf.subarray(body, body + lacing));
      body += lacing;
      if (lacing < 255) {
        packets.push(Buffer.concat(partial));
        partial = [];
      }
    }
    off = body;
  }
  return packets;
}

/** Opus packets of an Ogg Opus file, without the OpusHead/OpusTags headers. */
export function opusPacketsFromOgg(data: Uint8Array): Uint8Array[] {
  return oggPackets(data).filter((p) => {
    const magic = Buffer.from(p.subarray(0, 8)).toString('latin1');
    return magic !== 'OpusHead' && magic !== 'OpusTags';
  });
}
