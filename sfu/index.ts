export { Sfu, type SfuOptions, type SfuEvents } from './sfu.ts';
export { Channel, type ChannelEvents, type ChannelOptions, type LadderSettings } from './channel.ts';
export { parseLadder } from './ladder/rungs.ts';
export { Vp8Rung, type Vp8RungEvents } from './ladder/vp8-rung.ts';
export {
  ChannelRecording,
  type ChannelRecordingEvents,
  type ChannelRecordingOptions,
  type ChannelRecordingState,
  type RecordingResult,
  type RecordingSettings,
} from './channel-recording.ts';
export { Ingest, WhipIngest, RelayIngest, type IngestEvents, type IngestOptions } from './ingest.ts';
export { Viewer, type RecoveryPosition, type ViewerClient, type ViewerEvents } from './viewer.ts';
export { WhepViewer } from './whep-viewer.ts';
export { SocketViewer, type SocketViewerOptions } from './socket-viewer.ts';
export { CatchUpSlots, CatchUpSlot } from './dvr/catch-up-slots.ts';
export { Relay, type RelayEvents } from './relay.ts';
export { SfuError, type SfuErrorCode } from './errors.ts';
export type {
  AudiencePlacement,
  ConsumerInfo,
  LayerChoice,
  LayerInfo,
  UnplayableTrack,
  TranscodedTrack,
  DtlsParameters,
  DvrPosition,
  IceCandidate,
  IceParameters,
  IceRestartResult,
  IngestSource,
  PipeEndpoint,
  RelayOffer,
  RtpCapabilities,
  RtpParameters,
  ResumeResult,
  SeekResult,
  SeekTarget,
  TransportView,
} from './types.ts';
export { SdpError } from './sdp/errors.ts';
export { exportProgressive, inspectRecording, repairRecording, stopProgramHelper } from './recording/index.ts';
export { parseOffer, type ParsedOffer, type OfferedMedia, type MediaKind } from './sdp/offer.ts';
export { buildAnswer, remoteDtlsRole } from './sdp/answer.ts';
export { planIngest, planEgress } from './sdp/plan.ts';
export { MEDIA_CODECS } from './codecs.ts';
export { pictureSize, packetPictureSize, type PictureSize } from './layer-size.ts';
export { resolveWorkerBin, cachedWorkerPath } from './worker-bin.ts';
export { resolveWorkerAllocator, type WorkerAllocator, type WorkerAllocatorSetting } from './worker-allocator.ts';
export type { SfuLogger } from './logger.ts';
export {
  makeClip,
  ClipError,
  MIN_CLIP_SECONDS,
  MAX_CLIP_SECONDS,
  thumbnailFromDvr,
  type Clip as MediaClip,
  type DvrSource,
  type ProgramCodec,
  type ThumbnailOptions,
  type ThumbnailResult,
} from './recording/index.ts';
