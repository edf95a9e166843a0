/**
 * Turns the receiver's WebRTC stats (one report per consumer track) into the
 * figures a viewer can read: resolution, fps, bitrate, loss, jitter buffer,
 * codec, and an estimate of the delay from the server to this screen.
 * Rates and averages cover the interval since the previous sample, not the
 * whole session, so they follow what is happening now.
 */

export interface PlayerStats {
  resolution: { width: number; height: number } | null;
  fps: number | null;
  /** Audio + video, over the last interval. */
  bitrateKbps: number | null;
  /** Percentage of packets lost over the last interval (audio + video). */
  packetLossPct: number | null;
  /** Average video jitter-buffer delay over the last interval. */
  jitterBufferMs: number | null;
  /** Round trip between this browser and the server (ICE candidate pair). */
  rttMs: number | null;
  codec: string | null;
  framesDecoded: number;
  /** Video packets received since the track started (a stall with packets arriving is the link, not the publisher). */
  videoPacketsReceived: number;
  /**
   * Server → screen: half the round trip + jitter buffer + decode time. The streamer's encoder and
   * upload are not included: neither end of this connection can measure them.
   */
  serverToScreenMs: number | null;
  /** The simulcast layer being received; stays null until the server offers layers. */
  currentLayer: string | null;
}

interface Counters {
  at: number;
  bytes: number;
  packetsReceived: number;
  packetsLost: number;
  framesDecoded: number;
  jitterBufferDelay: number;
  jitterBufferEmitted: number;
  totalDecodeTime: number;
}

type Stat = Record<string, unknown> & { type: string; id: string };

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

function entries(report: RTCStatsReport | null): Stat[] {
  const out: Stat[] = [];
  report?.forEach((s: Stat) => out.push(s));
  return out;
}

export class StatsSampler {
  #prev: Counters | null = null;

  sample(video: RTCStatsReport | null, audio: RTCStatsReport | null, now = Date.now()): PlayerStats {
    const all = [...entries(video), ...entries(audio)];
    const inbound = all.filter((s) => s.type === 'inbound-rtp');
    const v = inbound.find((s) => s.kind === 'video');
    const a = inbound.find((s) => s.kind === 'audio');
    const pair = all.find(
      (s) => s.type === 'candidate-pair' && (s.nominated || s.state === 'succeeded') && num(s.currentRoundTripTime) > 0,
    );
    const codecName = (s: Stat | undefined) => {
      const c = s && all.find((x) => x.type === 'codec' && x.id === s.codecId);
      return typeof c?.mimeType === 'string' ? c.mimeType.split('/')[1]! : null;
    };
    const cur: Counters = {
      at: now,
      bytes: num(v?.bytesReceived) + num(a?.bytesReceived),
      packetsReceived: num(v?.packetsReceived) + num(a?.packetsReceived),
      packetsLost: Math.max(0, num(v?.packetsLost)) + Math.max(0, num(a?.packetsLost)),
      framesDecoded: num(v?.framesDecoded),
      jitterBufferDelay: num(v?.jitterBufferDelay),
      jitterBufferEmitted: num(v?.jitterBufferEmittedCount),
      totalDecodeTime: num(v?.totalDecodeTime),
    };
    const prev = this.#prev && this.#prev.at < now && cur.bytes >= this.#prev.bytes ? this.#prev : null;
    this.#prev = cur;

    const seconds = prev ? (now - prev.at) / 1000 : 0;
    const emitted = prev ? cur.jitterBufferEmitted - prev.jitterBufferEmitted : cur.jitterBufferEmitted;
    const jitterBufferMs = emitted > 0 ? ((cur.jitterBufferDelay - (prev?.jitterBufferDelay ?? 0)) / emitted) * 1000 : null;
    const decoded = prev ? cur.framesDecoded - prev.framesDecoded : cur.framesDecoded;
    const decodeMs = decoded > 0 ? ((cur.totalDecodeTime - (prev?.totalDecodeTime ?? 0)) / decoded) * 1000 : 0;
    const received = prev ? cur.packetsReceived - prev.packetsReceived : 0;
    const lost = prev ? cur.packetsLost - prev.packetsLost : 0;
    const rttMs = pair ? num(pair.currentRoundTripTime) * 1000 : null;
    const codecs = [codecName(v), codecName(a)].filter(Boolean);

    return {
      resolution: v && num(v.frameWidth) ? { width: num(v.frameWidth), height: num(v.frameHeight) } : null,
      fps: v && typeof v.framesPerSecond === 'number' ? v.framesPerSecond : null,
      bitrateKbps: prev && seconds > 0 ? ((cur.bytes - prev.bytes) * 8) / seconds / 1000 : null,
      packetLossPct: prev && received + lost > 0 ? (Math.max(0, lost) / (received + Math.max(0, lost))) * 100 : prev ? 0 : null,
      jitterBufferMs,
      rttMs,
      codec: codecs.length ? codecs.join(' + ') : null,
      framesDecoded: cur.framesDecoded,
      videoPacketsReceived: num(v?.packetsReceived),
      serverToScreenMs: jitterBufferMs === null ? null : (rttMs ?? 0) / 2 + jitterBufferMs + decodeMs,
      currentLayer: null,
    };
  }
}

/** "0.4 s", "12 ms" — a delay in the unit a person reads at a glance. */
export function formatDelay(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}
