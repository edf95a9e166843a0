/** Types shared by the recording module: coded frames, codecs, and the narrow views of the SFU it reads from. */

export type MediaKind = 'audio' | 'video';

/** The codecs whipcast's program can carry (see sfu/codecs.ts); recording handles these. */
export type RecordableCodec = 'opus' | VideoCodecName;

/** The video codecs recording handles. */
export type VideoCodecName = 'h264' | 'vp8' | 'vp9' | 'av1';

/** Container a recording of a given video codec is written in. */
export type Container = 'mp4' | 'webm';

/** One coded frame (access unit) reassembled from RTP. */
export interface CodedFrame {
  /** RTP timestamp of the frame (32-bit, as on the wire). */
  rtpTimestamp: number;
  /** Arrival time of the frame's first packet, ms since the epoch. */
  arrivalMs: number;
  /** A decoder can start here (H.264 IDR, VP8/VP9 key frame, AV1 key frame with its sequence header; every Opus packet). */
  keyframe: boolean;
  /**
   * The frame as stored in a file: H.264 as length-prefixed NAL units (AVCC, 4-byte lengths); VP8, VP9 and Opus as
   * sent (VP9 spatial layers of one picture as a superframe); AV1 as a temporal unit of OBUs with size fields.
   */
  data: Uint8Array;
  /** Set on the first keyframe and whenever the stream's configuration (size, parameter sets) changes. */
  config?: VideoConfig;
}

/** What a depacketizer learned about the stream, needed for the container's sample entry. */
export interface VideoConfig {
  codec: VideoCodecName;
  width: number;
  height: number;
  /** WebCodecs codec string, e.g. `avc1.42c01f`, `vp8`, `vp09.00.21.08`, `av01.0.04M.08` (MP4 builds vpcC/av1C from it). */
  codecString: string;
  /** H.264: the AVCDecoderConfigurationRecord (avcC). */
  description?: Uint8Array;
}

/** Counters a depacketizer keeps (loss is reported, not hidden). */
export interface DepacketizerStats {
  /** Frames handed out. */
  frames: number;
  /** Frames dropped: damaged by packet loss, or delta frames while waiting for the next keyframe. */
  droppedFrames: number;
  /** Packets never received (sequence gaps given up on). */
  lostPackets: number;
}

/** A packet as the SFU's program delivers it: the rewritten RTP packet and its arrival time. */
export interface ProgramPacketInfo {
  kind: MediaKind;
  arrivalMs: number;
}

/** The codec of a program track, as mediasoup describes it (only what recording reads). */
export interface ProgramCodec {
  mimeType: string;
  clockRate: number;
  channels?: number;
}

/**
 * A program track as recording sees it: structurally `sfu/program.ts` ProgramTrack.
 * Only these members are used, so the SFU can change around it.
 */
export interface ProgramTrackLike {
  readonly kind: MediaKind;
  readonly codec: ProgramCodec;
  onPacket(listener: (packet: Buffer, info: ProgramPacketInfo) => void): () => void;
}

/** One packet kept by the DVR buffer. */
export interface DvrPacket {
  /** Arrival time, ms since the epoch. */
  at: number;
  kind: MediaKind;
  /** First packet of a video keyframe. */
  keyframe: boolean;
  /** Its simulcast layer from the top (absent or 0: the best one, the only one clips and thumbnails read). */
  rank?: number;
  /** The RTP packet. */
  data: Buffer;
}

/**
 * The DVR buffer as clips and thumbnails read it: structurally `sfu/dvr/buffer.ts` DvrBuffer.
 * Indices are absolute and increase with arrival.
 */
export interface DvrSource {
  /** Absolute index of the oldest packet. */
  readonly start: number;
  /** Absolute index one past the newest packet. */
  readonly end: number;
  range(): { start: number; end: number } | null;
  /** Index of the last video keyframe at or before `t` (or the first one in the window). */
  keyframeAtOrBefore(t: number): number | null;
  lastKeyframe(): number | null;
  indexAtOrAfter(t: number): number;
  at(index: number): DvrPacket | undefined;
}

/** Maps a mediasoup mimeType to the codec recording knows it as, or null when it cannot record it. */
export function recordableCodec(mimeType: string): RecordableCodec | null {
  switch (mimeType.toLowerCase()) {
    case 'audio/opus':
      return 'opus';
    case 'video/h264':
      return 'h264';
    case 'video/vp8':
      return 'vp8';
    case 'video/vp9':
      return 'vp9';
    case 'video/av1':
      return 'av1';
    default:
      return null;
  }
}

/**
 * The container for a video codec. H.264, VP9 and AV1 go in MP4, which every browser that decodes them plays.
 * VP8 goes in WebM: Chromium does not play VP8 in MP4 (`canPlayType('video/mp4; codecs="vp8"')`
 * is empty in Chromium 156, checked here), while every browser that publishes VP8 over WebRTC plays VP8 WebM.
 */
export function containerFor(video: RecordableCodec | null): Container {
  return video === 'vp8' ? 'webm' : 'mp4';
}

/**
 * The index of the first packet of the video frame holding packet `index`: the DVR indexes every packet
 * that can start a keyframe (the SPS and the IDR slice of one frame both count), a reader must start at the first.
 */
export function frameStartIndex(dvr: DvrSource, index: number): number {
  const p = dvr.at(index);
  if (!p || p.data.length < 12) return index;
  const ts = p.data.readUInt32BE(4);
  let first = index;
  // bounded: a frame is at most a few thousand packets (interleaved with audio)
  for (let i = index - 1; i >= dvr.start && i > index - 8192; i--) {
    const prev = dvr.at(i);
    if (!prev) break;
    if (prev.kind !== 'video' || prev.rank) continue; // lower simulcast layers interleave
    if (prev.data.length < 12 || prev.data.readUInt32BE(4) !== ts) break;
    first = i;
  }
  return first;
}
