/** An offer whipcast cannot accept; `status` is the HTTP status WHIP/WHEP answer with (400 malformed, 422 unsupported). */
export class SdpError extends Error {
  constructor(
    readonly status: 400 | 422,
    readonly code: 'malformed_sdp' | 'unsupported_media',
    message: string,
  ) {
    super(message);
  }
}

export const malformed = (msg: string): SdpError => new SdpError(400, 'malformed_sdp', msg);
export const unsupported = (msg: string): SdpError => new SdpError(422, 'unsupported_media', msg);
