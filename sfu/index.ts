export {
  Sfu,
  SfuError,
  type ConsumerInfo,
  type TransportView,
  type SfuOptions,
  type SfuEvents,
  type SessionAnswer,
  type IceRestartResult,
  type SfuErrorCode,
  type IngestSource,
  type PipeEndpoint,
  type RelayOffer,
} from './sfu.ts';
export { SdpError } from './sdp/errors.ts';
export { parseOffer, type ParsedOffer, type OfferedMedia, type MediaKind } from './sdp/offer.ts';
export { buildAnswer, remoteDtlsRole } from './sdp/answer.ts';
export { planIngest, planEgress } from './sdp/plan.ts';
export { MEDIA_CODECS } from './codecs.ts';
export { resolveWorkerBin, cachedWorkerPath } from './worker-bin.ts';
export type { SfuLogger } from './logger.ts';
