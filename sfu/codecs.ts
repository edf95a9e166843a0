import type { types } from 'mediasoup';

/**
 * Codecs every channel router offers. H.264 comes in the profiles encoders
 * really produce: OBS always signals Constrained Baseline (42e01f) whatever
 * x264 encodes, other publishers signal what they send. Audio is stereo Opus.
 */
export const MEDIA_CODECS: types.RouterRtpCodecCapability[] = [
  { kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2, parameters: { useinbandfec: 1, stereo: 1, 'sprop-stereo': 1 } },
  {
    kind: 'video',
    mimeType: 'video/H264',
    clockRate: 90000,
    parameters: { 'packetization-mode': 1, 'profile-level-id': '42e01f', 'level-asymmetry-allowed': 1 },
  },
  {
    kind: 'video',
    mimeType: 'video/H264',
    clockRate: 90000,
    parameters: { 'packetization-mode': 1, 'profile-level-id': '42001f', 'level-asymmetry-allowed': 1 },
  },
  {
    kind: 'video',
    mimeType: 'video/H264',
    clockRate: 90000,
    parameters: { 'packetization-mode': 1, 'profile-level-id': '4d001f', 'level-asymmetry-allowed': 1 },
  },
  {
    kind: 'video',
    mimeType: 'video/H264',
    clockRate: 90000,
    parameters: { 'packetization-mode': 1, 'profile-level-id': '640032', 'level-asymmetry-allowed': 1 },
  },
  { kind: 'video', mimeType: 'video/VP8', clockRate: 90000 },
  { kind: 'video', mimeType: 'video/VP9', clockRate: 90000, parameters: { 'profile-id': 0 } },
  { kind: 'video', mimeType: 'video/AV1', clockRate: 90000 },
];

/** Header extensions whipcast accepts from publishers and uses towards viewers. */
export const SUPPORTED_EXTENSIONS = new Set([
  'urn:ietf:params:rtp-hdrext:sdes:mid',
  'urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id',
  'urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id',
  'http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time',
  'http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01',
  'urn:ietf:params:rtp-hdrext:ssrc-audio-level',
  'urn:3gpp:video-orientation',
  'urn:ietf:params:rtp-hdrext:toffset',
  'http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time',
  'http://www.webrtc.org/experiments/rtp-hdrext/playout-delay',
]);

export const SUPPORTED_FEEDBACK = new Set(['nack', 'nack pli', 'ccm fir', 'goog-remb', 'transport-cc']);

export type CodecParameters = Record<string, string | number>;

/** H.264 profile of a profile-level-id: the first two bytes, with constraint flags normalised like mediasoup does. */
export function h264Profile(profileLevelId: string | number | undefined): string {
  const id = String(profileLevelId ?? '42001f')
    .toLowerCase()
    .padStart(6, '0');
  const idc = id.slice(0, 2);
  const iop = parseInt(id.slice(2, 4), 16);
  if (idc === '42') return iop & 0x40 ? 'constrained-baseline' : 'baseline';
  if (idc === '4d') return iop & 0x80 ? 'constrained-baseline' : 'main';
  if (idc === '58') return iop & 0xc0 ? 'constrained-baseline' : 'extended';
  if (idc === '64') return iop & 0x0c ? 'constrained-high' : 'high';
  if (idc === 'f4') return 'predictive-high-444';
  return `idc-${idc}`;
}

/** Same codec for forwarding purposes (H.264: same packetization mode and profile). */
type AnyCodec = { mimeType: string; parameters?: Record<string, unknown> };

export function sameCodec(a: AnyCodec, b: AnyCodec): boolean {
  if (a.mimeType.toLowerCase() !== b.mimeType.toLowerCase()) return false;
  const mime = a.mimeType.toLowerCase();
  if (mime === 'video/h264') {
    const pm = (p?: Record<string, unknown>) => Number(p?.['packetization-mode'] ?? 0);
    return (
      pm(a.parameters) === pm(b.parameters) &&
      h264Profile(a.parameters?.['profile-level-id'] as string) === h264Profile(b.parameters?.['profile-level-id'] as string)
    );
  }
  if (mime === 'video/vp9') return Number(a.parameters?.['profile-id'] ?? 0) === Number(b.parameters?.['profile-id'] ?? 0);
  return true;
}
