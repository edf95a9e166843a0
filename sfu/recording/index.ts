/**
 * Recording, clips and thumbnails from a channel's program and DVR buffer,
 * without re-encoding. See docs/recordings.md.
 */
export { Recorder, type RecorderEvents, type RecorderOptions, type RecorderState, type RecorderStats } from './recorder.ts';
export { exportProgressive, type ExportResult } from './export.ts';
export { makeClip, ClipError, MIN_CLIP_SECONDS, MAX_CLIP_SECONDS, type Clip, type ClipOptions } from './clip.ts';
export { thumbnailFromDvr, keyframeToImage, type ThumbnailOptions, type ThumbnailResult } from './thumbnail.ts';
export { inspectRecording, repairRecording, type RecordingInfo } from './inspect.ts';
export { stopProgramHelper } from './spawner.ts';
export { Depacketizer, type DepacketizerOptions } from './depacketizer.ts';
export { H264Depacketizer } from './h264.ts';
export { Vp8Depacketizer } from './vp8.ts';
export { Vp9Depacketizer } from './vp9.ts';
export { Av1Depacketizer } from './av1.ts';
export { OpusDepacketizer } from './opus.ts';
export { createDepacketizer } from './timeline.ts';
export {
  containerFor,
  recordableCodec,
  type CodedFrame,
  type Container,
  type DvrPacket,
  type DvrSource,
  type ProgramCodec,
  type ProgramTrackLike,
  type RecordableCodec,
  type VideoConfig,
} from './types.ts';
