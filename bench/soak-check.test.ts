import { describe, expect, it } from 'vitest';
import { SoakChecker } from './soak-check.ts';

/** Feeds `viewer` 30 fps video (1 packet per frame) and 50 pps audio from `from` to `to` ms. */
function feed(c: SoakChecker, viewer: string, from: number, to: number, seq: { a: number; v: number }) {
  for (let t = from; t < to; t += 20) c.packet(viewer, 'audio', seq.a++ & 0xffff, t, false);
  for (let t = from; t < to; t += 33) c.packet(viewer, 'video', seq.v++ & 0xffff, t, true);
}

describe('SoakChecker', () => {
  it('passes viewers that receive continuously, across sequence wrap', () => {
    const c = new SoakChecker();
    c.addViewer('ch0/v0', 0);
    c.addViewer('ch0/v1', 0);
    feed(c, 'ch0/v0', 0, 10_000, { a: 0xfff0, v: 0xff00 });
    feed(c, 'ch0/v1', 0, 10_000, { a: 1, v: 1 });
    const v = c.finish(10_000);
    expect(v.failures).toEqual([]);
    expect(v.ok).toBe(true);
    expect(v.tracks.every((t) => t.lost === 0 && t.maxGapMs < 100)).toBe(true);
  });

  it('names a viewer whose video stalls mid-run, and only that viewer', () => {
    const c = new SoakChecker();
    c.addViewer('ch0/v0', 0);
    c.addViewer('ch1/v2', 0);
    feed(c, 'ch0/v0', 0, 10_000, { a: 0, v: 0 });
    const s = { a: 0, v: 0 };
    feed(c, 'ch1/v2', 0, 4_000, s);
    for (let t = 4_000; t < 10_000; t += 20) c.packet('ch1/v2', 'audio', s.a++, t, false);
    s.v += 5; // the stall resumes with a sequence gap
    feed(c, 'ch1/v2', 6_000, 10_000, s);
    const v = c.finish(10_000);
    expect(v.ok).toBe(false);
    expect(v.failures).toHaveLength(1);
    expect(v.failures[0]).toMatch(/^ch1\/v2: no video frame for 20\d\d ms \(until 6\.0 s into the window\)/);
    // when the worst gap ended lines up viewers that stalled together
    expect(v.tracks.find((t) => t.viewer === 'ch1/v2' && t.kind === 'video')!.maxGapEndMs).toBe(6000);
  });

  it('fails a viewer that stops receiving before the end, or never receives a kind', () => {
    const c = new SoakChecker();
    c.addViewer('a', 0);
    c.addViewer('b', 0);
    feed(c, 'a', 0, 3_000, { a: 0, v: 0 });
    for (let t = 0; t < 10_000; t += 33) c.packet('b', 'video', t / 33, t, true);
    const v = c.finish(10_000);
    expect(v.failures).toEqual([
      'a: no audio frame for 7020 ms (until 10.0 s into the window)',
      'a: no video frame for 7030 ms (until 10.0 s into the window)',
      'b: no audio frame for 10000 ms (until 10.0 s into the window)',
    ]);
  });

  it('follows sequence numbers per SSRC: a hand-over between two streams of a kind loses nothing', () => {
    const c = new SoakChecker();
    c.addViewer('v', 0);
    // instant start: a replay stream (seq from 40000) and the live one (seq from 7) overlap for a while
    let replay = 40_000;
    let live = 7;
    for (let t = 0; t < 10_000; t += 20) {
      if (t < 6_000) c.packet('v', 'audio', replay++, t, false, 1);
      if (t >= 5_000) c.packet('v', 'audio', live++, t, false, 2);
      c.packet('v', 'video', t / 20, t, true, 3);
    }
    const v = c.finish(10_000);
    expect(v.failures).toEqual([]);
    expect(v.tracks.find((t) => t.kind === 'audio')).toMatchObject({ lost: 0, packets: 550 });
  });

  it('counts losses and fails a viewer past the allowed fraction', () => {
    const c = new SoakChecker({ maxLossFraction: 0.01 });
    c.addViewer('lossy', 0);
    let seq = 0;
    for (let t = 0; t < 10_000; t += 20) {
      c.packet('lossy', 'audio', seq, t, false);
      c.packet('lossy', 'video', seq, t, true);
      seq += t % 200 === 0 ? 2 : 1; // one in ten packets lost
    }
    c.packet('lossy', 'video', seq - 3, 9_990, true); // a late retransmission is not a loss
    const v = c.finish(10_000);
    expect(v.tracks.find((t) => t.kind === 'video')!.lost).toBe(50);
    expect(v.failures).toEqual(['lossy: 50 of 550 audio packets lost', 'lossy: 50 of 550 video packets lost']);
  });
});
