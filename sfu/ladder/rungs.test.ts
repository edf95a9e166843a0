import { describe, expect, it } from 'vitest';
import { kbpsFor, parseLadder, rungsFor, vp8RungHeight } from './rungs.ts';

describe('ladder rungs', () => {
  it('parses TRANSCODE_LADDER: heights lowest first, duplicates once, empty = off', () => {
    expect(parseLadder('720p, 360p,360P')).toEqual([360, 720]);
    expect(parseLadder('')).toEqual([]);
    for (const bad of ['360', '360p,abc', '0p', '4320p', '361p']) expect(() => parseLadder(bad), bad).toThrow(/not a layer height/);
  });

  it('encodes only the rungs below the source, keeping its aspect ratio', () => {
    expect(rungsFor([180, 360, 720], { width: 1280, height: 720 })).toEqual([
      { height: 180, width: 320, kbps: 180 },
      { height: 360, width: 640, kbps: 600 },
      null,
    ]);
    expect(rungsFor([360], { width: 1920, height: 1080 })[0]?.width).toBe(640);
    expect(rungsFor([360], { width: 480, height: 360 })).toEqual([null]);
  });

  it('a copy in another codec (the VP8 rung) is encoded at the source size when the source is no bigger', () => {
    expect(rungsFor([360], { width: 480, height: 360 }, { upToSource: true })).toEqual([{ height: 360, width: 480, kbps: 600 }]);
    expect(rungsFor([360], { width: 426, height: 240 }, { upToSource: true })).toEqual([{ height: 240, width: 426, kbps: 300 }]);
    expect(rungsFor([360], { width: 1280, height: 720 }, { upToSource: true })[0]).toEqual({ height: 360, width: 640, kbps: 600 });
  });

  it('the VP8 rung is the lowest rung of at least 360p, else the highest', () => {
    expect(vp8RungHeight([180, 360, 720])).toBe(360);
    expect(vp8RungHeight([480, 720])).toBe(480);
    expect(vp8RungHeight([180, 240])).toBe(240);
  });

  it('interpolates a bitrate between the table rows by pixel count', () => {
    expect(kbpsFor(360)).toBe(600);
    expect(kbpsFor(432)).toBeGreaterThan(600);
    expect(kbpsFor(432)).toBeLessThan(1000);
  });
});
