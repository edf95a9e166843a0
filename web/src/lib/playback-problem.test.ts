import { describe, expect, it } from 'vitest';
import { codecName, StallWatch, type StallSample } from './playback-problem.ts';

/** One sample a second: `fps` frames and `pps` video packets per second from t = 0. */
function run(watch: StallWatch, seconds: number, fps: number, pps: number, start: StallSample, lossPct: number | null = 0) {
  let s = start;
  const out = [];
  for (let i = 0; i < seconds; i++) {
    s = {
      at: s.at + 1000,
      framesDecoded: s.framesDecoded + fps,
      videoPacketsReceived: s.videoPacketsReceived + pps,
      packetLossPct: lossPct,
    };
    out.push(watch.sample(s));
  }
  return { last: s, problems: out };
}
const zero: StallSample = { at: 0, framesDecoded: 0, videoPacketsReceived: 0, packetLossPct: null };

describe('StallWatch', () => {
  it('stays quiet while frames decode', () => {
    const w = new StallWatch();
    w.sample(zero);
    expect(run(w, 30, 30, 250, zero).problems.every((p) => p === null)).toBe(true);
  });

  it('a link that cannot carry the stream: packets arrive, loss high, frames do not decode (a keyframe now and then is not watching)', () => {
    const w = new StallWatch();
    w.sample(zero);
    const a = run(w, 4, 1, 90, zero, 62);
    expect(a.problems.every((p) => p === null)).toBe(true); // not before the window is over
    const b = run(w, 2, 1, 90, a.last, 62);
    expect(b.problems.at(-1)).toEqual({ kind: 'network', receiving: true, lossPct: 62 });
  });

  it('no video arriving at all', () => {
    const w = new StallWatch();
    w.sample(zero);
    expect(run(w, 6, 0, 0, zero, null).problems.at(-1)).toEqual({ kind: 'network', receiving: false, lossPct: null });
  });

  it('ends the stall once frames decode at a watchable rate again', () => {
    const w = new StallWatch();
    w.sample(zero);
    const a = run(w, 8, 0, 80, zero, 50);
    expect(a.problems.at(-1)?.kind).toBe('network');
    const b = run(w, 1, 5, 80, a.last, 10);
    expect(b.problems.at(-1)?.kind).toBe('network'); // 5 fps: still not watching
    expect(run(w, 1, 30, 250, b.last).problems.at(-1)).toBeNull();
  });

  it('a track swap (counters start again) or a reset starts the judgement afresh', () => {
    const w = new StallWatch();
    w.sample(zero);
    const a = run(w, 8, 0, 80, zero);
    expect(a.problems.at(-1)?.kind).toBe('network');
    w.reset();
    expect(run(w, 3, 0, 0, a.last).problems.every((p) => p === null)).toBe(true);
    const w2 = new StallWatch();
    const b = run(w2, 4, 30, 250, zero);
    // the counters restart at 0 (new track) and decode from there: no stall
    expect(run(w2, 6, 30, 250, { ...b.last, framesDecoded: 0, videoPacketsReceived: 0 }).problems.every((p) => p === null)).toBe(true);
  });
});

describe('codecName', () => {
  it('names codecs as people write them', () => {
    expect(codecName('video/H264')).toBe('H.264');
    expect(codecName('video/VP8')).toBe('VP8');
    expect(codecName('video/AV1')).toBe('AV1');
  });
});
