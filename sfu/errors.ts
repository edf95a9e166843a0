/** Errors the SFU throws for requests it cannot serve (SDP problems are `SdpError`). */

/** Why a media request failed: the session or channel is not here, the channel is offline, or the media server cannot serve now. */
export type SfuErrorCode = 'not_found' | 'stream_offline' | 'unavailable';

export class SfuError extends Error {
  constructor(
    readonly code: SfuErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'SfuError';
  }
}
