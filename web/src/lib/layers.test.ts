import { describe, expect, it } from 'vitest';
import { layerName, layerOf, qualityOptions } from './layers.ts';

const LAYERS = [
  { spatialLayer: 0, width: 320, height: 180 },
  { spatialLayer: 1, width: 640, height: 360 },
  { spatialLayer: 2, width: 1280, height: 720 },
];

describe('simulcast layers for viewers', () => {
  it('names layers by resolution, portrait by its short side', () => {
    expect(layerName({ width: 1280, height: 720 })).toBe('720p');
    expect(layerName({ width: 720, height: 1280 })).toBe('720p');
    expect(layerName({ width: 1920, height: 1080 })).toBe('1080p');
  });

  it('offers Auto then the layers best first', () => {
    expect(qualityOptions(LAYERS)).toEqual([
      { value: null, label: 'Auto' },
      { value: 2, label: '720p' },
      { value: 1, label: '360p' },
      { value: 0, label: '180p' },
    ]);
    expect(qualityOptions([])).toEqual([{ value: null, label: 'Auto' }]);
  });

  it('finds the layer a decoded picture comes from', () => {
    expect(layerOf({ width: 640, height: 360 }, LAYERS)?.spatialLayer).toBe(1);
    expect(layerOf({ width: 1280, height: 718 }, LAYERS)?.spatialLayer).toBe(2);
    expect(layerOf(null, LAYERS)).toBeNull();
    expect(layerOf({ width: 640, height: 360 }, [])).toBeNull();
  });
});
