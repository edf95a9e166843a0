import { describe, expect, it } from 'vitest';
import { buildRtp } from './packet.ts';
import {
  buildTransportFeedback,
  TransportCcReceiver,
  transportSequence,
  withProbationSsrc,
  type TransportFeedback,
} from './transport-cc.ts';

/** Reads a feedback packet back, as a sender does (statuses from run-length or status-vector chunks, then deltas). */
function parse(buf: Buffer): Omit<TransportFeedback, 'arrivals'> & { reference: number; arrivals: (number | null)[] } {
  expect(buf[0]! & 0x1f).toBe(15);
  expect(buf[1]).toBe(205);
  expect((buf.readUInt16BE(2) + 1) * 4).toBe(buf.length);
  const count = buf.readUInt16BE(14);
  const reference = buf.readIntBE(16, 3);
  const symbols: number[] = [];
  let o = 20;
  while (symbols.length < count) {
    const chunk = buf.readUInt16BE(o);
    o += 2;
    if (!(chunk & 0x8000)) for (let k = 0; k < (chunk & 0x1fff); k++) symbols.push((chunk >> 13) & 3);
    else if (chunk & 0x4000) for (let k = 0; k < 7; k++) symbols.push((chunk >> (12 - 2 * k)) & 3);
    else for (let k = 0; k < 14; k++) symbols.push((chunk >> (13 - k)) & 1);
  }
  let at = reference * 256;
  const arrivals = symbols.slice(0, count).map((s) => {
    if (s === 0) return null;
    const d = s === 1 ? buf.readUInt8(o) : buf.readInt16BE(o);
    o += s === 1 ? 1 : 2;
    at += d;
    return at;
  });
  return {
    senderSsrc: buf.readUInt32BE(4),
    mediaSsrc: buf.readUInt32BE(8),
    baseSequence: buf.readUInt16BE(12),
    feedbackCount: buf[19]!,
    reference,
    arrivals,
  };
}

const packet = (seq: number, id = 5) =>
  buildRtp(
    {
      payloadType: 96,
      sequenceNumber: seq,
      timestamp: 0,
      ssrc: 42,
      marker: false,
      extensions: new Map([
        [1, Buffer.from('1')],
        [id, Buffer.from([seq >> 8, seq & 0xff])],
      ]),
    },
    Buffer.alloc(100),
  );

describe('transport-wide congestion control feedback', () => {
  it('reads the sequence number from its header extension', () => {
    expect(transportSequence(packet(0xabcd), 5)).toBe(0xabcd);
    expect(transportSequence(packet(7, 3), 5)).toBeNull();
    expect(
      transportSequence(buildRtp({ payloadType: 96, sequenceNumber: 1, timestamp: 0, ssrc: 1, marker: false }, Buffer.alloc(10)), 5),
    ).toBeNull();
  });

  it('encodes arrivals, gaps, small, large and negative deltas so a sender reads them back exactly', () => {
    const arrivals = [1000, null, 1010, 1300, 1299, null, null, 1299 + 20000, 1299 + 20001];
    const buf = buildTransportFeedback({ senderSsrc: 1, mediaSsrc: 42, baseSequence: 0xfffe, arrivals, feedbackCount: 300 });
    expect(buf.length % 4).toBe(0);
    const back = parse(buf);
    expect(back).toMatchObject({ senderSsrc: 1, mediaSsrc: 42, baseSequence: 0xfffe, feedbackCount: 300 & 0xff });
    expect(back.reference).toBe(Math.floor(1000 / 256));
    expect(back.arrivals).toEqual(arrivals);
  });

  it('reports each packet once, in order, with losses as gaps and across the 16-bit wrap', () => {
    const sent: Buffer[] = [];
    const rx = new TransportCcReceiver({ extensionId: 5, send: (b) => sent.push(b), intervalMs: 60_000 });
    try {
      const seqs = [0xfffc, 0xfffd, 0xffff, 0, 1, 3];
      seqs.forEach((s, i) => rx.received(packet(s), 100 + i));
      rx.flush();
      rx.received(packet(2), 200); // late: already reported lost
      rx.received(packet(4), 201);
      rx.flush();
      expect(sent.map(parse).map((f) => [f.baseSequence, f.arrivals.map((a) => a !== null)])).toEqual([
        [0xfffc, [true, true, false, true, true, true, false, true]],
        [4, [true]],
      ]);
      expect(sent.map((b) => b[19])).toEqual([0, 1]);
      expect(parse(sent[0]!).arrivals[0]).toBe(400); // 100 ms in 250 µs ticks
    } finally {
      rx.close();
    }
  });

  it('stops, without throwing, when its feedback can no longer be sent (the track closed under the timer)', async () => {
    let attempts = 0;
    let attempted!: () => void;
    const firstAttempt = new Promise<void>((resolve) => (attempted = resolve));
    const rx = new TransportCcReceiver({
      extensionId: 5,
      intervalMs: 5,
      send: () => {
        attempts++;
        attempted();
        throw new Error('Track is closed'); // what libdatachannel's sendMessageBinary throws
      },
    });
    try {
      rx.received(packet(1), 100);
      await firstAttempt; // sent by the timer: a throw here would be an uncaught exception
      rx.received(packet(2), 101);
      expect(() => rx.flush()).not.toThrow();
      expect(attempts).toBe(1);
      expect(rx.feedbackSent).toBe(0);
    } finally {
      rx.close();
    }
  });

  it("names mediasoup's probation SSRC in the video section only, once", () => {
    const sdp = 'v=0\r\nm=audio 9 x 111\r\na=ssrc:5 cname:a\r\nm=video 9 x 102\r\na=ssrc:6 cname:a\r\n';
    const out = withProbationSsrc(sdp);
    expect(out).toBe(sdp + 'a=ssrc:1234 cname:probator\r\n');
    expect(withProbationSsrc(out)).toBe(out);
  });
});
