/**
 * Simulcast layers as a viewer sees them: named by resolution ("720p", "360p"),
 * never by rid. The sizes come from the server (`rtc.layers`: read off each
 * layer's bitstream), the one playing from the receiver's decoded frame size.
 */
import type { LayerView } from '$shared/protocol.ts';

/** "720p" for 1280x720 (the short side, so a portrait 720x1280 stream is 720p too). */
export function layerName(size: { width: number; height: number }): string {
  return `${Math.min(size.width, size.height)}p`;
}

/** The layer a decoded picture of `resolution` comes from (the closest height), or null. */
export function layerOf(resolution: { width: number; height: number } | null, layers: readonly LayerView[]): LayerView | null {
  if (!resolution || layers.length === 0) return null;
  let best: LayerView | null = null;
  for (const l of layers) if (!best || Math.abs(l.height - resolution.height) < Math.abs(best.height - resolution.height)) best = l;
  return best;
}

/** The menu: Auto first, then the layers best first. */
export function qualityOptions(layers: readonly LayerView[]): { value: number | null; label: string }[] {
  return [
    { value: null, label: 'Auto' },
    ...[...layers].sort((a, b) => b.spatialLayer - a.spatialLayer).map((l) => ({ value: l.spatialLayer, label: layerName(l) })),
  ];
}
