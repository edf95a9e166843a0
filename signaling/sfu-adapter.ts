import type { MediaLayer } from './media.ts';
import { NO_MEDIA } from './media.ts';
import type { MediaDeps } from './server.ts';

/** Placeholder until the SFU lands: the server runs without media. */
export async function createSfuMedia(deps: MediaDeps): Promise<MediaLayer> {
  deps.logger.warn('media layer not wired yet');
  return NO_MEDIA;
}
