/**
 * Open Graph tags of a clip's page (`/clips/:id`). The web app is a static
 * SPA, so link-preview crawlers (which run no JavaScript) would see an empty
 * shell; the server fills these tags into the shell it serves for that path.
 */
import type { Clip, Stream } from '@whipcast/db';

const CLIP_PAGE = /^\/clips\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\/?$/i;

export interface ClipPageOptions {
  db: { clips: { get(id: string): Promise<Clip | null> } };
  channels: { get(id: string): Promise<Stream | null> };
  /** Absolute base URL of this server for the request (PUBLIC_URL, else its own). */
  base(req: Request): string;
}

/** HTML-escapes text for an element body or a double-quoted attribute. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The `<head>` markup for `path` when it is an existing clip's page, else null. */
export function clipPageHeadTags(opts: ClipPageOptions): (path: string, req: Request) => Promise<string | null> {
  return async (path, req) => {
    const id = CLIP_PAGE.exec(path)?.[1];
    if (!id) return null;
    const clip = await opts.db.clips.get(id);
    if (!clip) return null;
    const stream = await opts.channels.get(clip.streamId);
    const base = opts.base(req);
    const channel = stream ? stream.title || `${stream.ownerUsername}'s channel` : 'a whipcast channel';
    const title = `Clip: ${channel}`;
    const seconds = Math.round(clip.durationMs / 1000);
    const by = clip.creatorUsername ? ` clipped by ${clip.creatorUsername}` : '';
    const description = `${seconds} s from ${stream ? `${stream.ownerUsername}'s channel` : 'a live stream'}${by}`;
    const video = `${base}/api/clips/${clip.id}/download`;
    const meta: [string, string][] = [
      ['og:title', title],
      ['og:description', description],
      ['og:type', 'video.other'],
      ['og:url', `${base}/clips/${clip.id}`],
      ['og:site_name', 'whipcast'],
      ...(clip.hasPoster ? ([['og:image', `${base}/api/clips/${clip.id}/poster`]] as [string, string][]) : []),
      ['og:video', video],
      ['og:video:url', video],
      ['og:video:type', clip.container === 'webm' ? 'video/webm' : 'video/mp4'],
      ['video:duration', String(seconds)],
    ];
    return [
      `<title>${escapeHtml(title)}</title>`,
      `<meta name="description" content="${escapeHtml(description)}">`,
      `<meta name="twitter:card" content="${clip.hasPoster ? 'summary_large_image' : 'summary'}">`,
      ...meta.map(([property, content]) => `<meta property="${property}" content="${escapeHtml(content)}">`),
    ].join('\n');
  };
}
