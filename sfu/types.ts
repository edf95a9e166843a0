/** Public value types of the SFU: what crosses into signaling besides the objects themselves. */
import type { types } from 'mediasoup';
import type { MediaKind } from './sdp/offer.ts';

export type RtpCapabilities = types.RtpCapabilities;
export type RtpParameters = types.RtpParameters;
export type DtlsParameters = types.DtlsParameters;
export type IceParameters = types.IceParameters;
export type IceCandidate = types.IceCandidate;

/** Where a channel's media comes from on this node: a WHIP publisher, or a relay from its origin node. */
export type IngestSource = 'publisher' | 'relay';

/** A WebRTC transport as a mediasoup-client (or any WebRTC peer) needs to connect to it. */
export interface TransportView {
  /** The mediasoup transport id (the socket viewer's id). */
  id: string;
  /** The server's ICE credentials. */
  iceParameters: IceParameters;
  /** The server's ICE candidates (one UDP and one TCP per worker). */
  iceCandidates: IceCandidate[];
  /** The server's DTLS fingerprints and role. */
  dtlsParameters: DtlsParameters;
}

/** A program track a viewer's device cannot receive (no decoder for its codec). */
export interface UnplayableTrack {
  kind: MediaKind;
  /** Its codec, e.g. `video/H264`. */
  mimeType: string;
}

/** A program track a viewer's device gets as a transcoded copy in another codec (the VP8 rung of an H.264 channel). */
export interface TranscodedTrack {
  kind: MediaKind;
  /** The channel's codec, e.g. `video/H264`. */
  mimeType: string;
  /** The copy's codec, e.g. `video/VP8`. */
  as: string;
  /** Whether DVR seeking works on it (the rung is live only). */
  dvr: boolean;
}

/** A simulcast layer of a channel's video, as a player names it (by its picture size). */
export interface LayerInfo {
  /** mediasoup's spatial layer: 0 = the lowest. */
  spatialLayer: number;
  width: number;
  height: number;
}

/** A socket viewer's video layers (lowest first; only those whose size is known) and the one it asked for (null: Auto). */
export interface LayerChoice {
  layers: LayerInfo[];
  preferred: number | null;
}

/** A consumer a socket viewer must set up on its side (mediasoup-client `transport.consume`). */
export interface ConsumerInfo {
  /** The consumer id (resume/pause it by this id). */
  id: string;
  /** The producer it consumes (a program track, or a replay of the DVR buffer). */
  producerId: string;
  kind: MediaKind;
  rtpParameters: RtpParameters;
  /** Instant start: a live consumer to switch to when the viewer emits `switch`. */
  standby?: boolean;
}

/** Where a socket viewer is in the DVR window: null (from `position()`) when it watches live. */
export interface DvrPosition {
  /** How far behind live the picture is, ms. */
  behindLiveMs: number;
  /** How much of the past is recorded, ms. */
  windowMs: number;
  /** Held by `pause()`. */
  paused: boolean;
}

/** What a DVR seek did: the viewer's new consumers and where it landed. */
export interface SeekResult {
  consumers: ConsumerInfo[];
  /** Where playback starts (at the keyframe at or before the target), ms behind live. */
  behindLiveMs: number;
  windowMs: number;
  /** The target was the live edge: the viewer is back on the program. */
  live: boolean;
}

/**
 * What a DVR resume did. On a replay shared with other viewers, which played on while this one was paused, the
 * resume is a seek to where it paused: new consumers (set them up like a seek's) and where it now is. Without
 * `consumers` the same ones play on.
 */
export interface ResumeResult {
  consumers?: ConsumerInfo[];
  /** With `consumers`: where playback starts, ms behind live. */
  behindLiveMs?: number;
}

/** A DVR seek target: exactly one of the two. */
export type SeekTarget = { offsetMs: number; deltaMs?: undefined } | { deltaMs: number; offsetMs?: undefined };

/** The server's side of an ICE restart (WHIP/WHEP PATCH). */
export interface IceRestartResult {
  iceParameters: IceParameters;
  iceCandidates: IceCandidate[];
}

/** One end of a node-to-node PipeTransport. */
export interface PipeEndpoint {
  ip: string;
  port: number;
  srtpParameters?: types.SrtpParameters | undefined;
}

/** What the origin node answers a relay request with: its pipe end and the program tracks it sends. */
export interface RelayOffer {
  endpoint: PipeEndpoint;
  tracks: { kind: MediaKind; rtpParameters: RtpParameters }[];
}

/** Viewers per worker for one channel (placement introspection for metrics and tests). */
export interface AudiencePlacement {
  worker: number;
  /** This worker holds the channel's own router (ingest, program, DVR replays of its viewers). */
  channel: boolean;
  routers: number;
  viewers: number;
}
