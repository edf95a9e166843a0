/** A fresh streamer account on a running whipcast, through its public HTTP API. */

export interface Streamer {
  /** Channel id (the WHEP path and the player page use it). */
  id: string;
  streamKey: string;
  /** Authorization header value of the account's session. */
  authorization: string;
  /** WHIP endpoint to publish to with `streamKey`. */
  whipUrl: string;
  /** WHEP endpoint of the channel. */
  whepUrl: string;
}

async function json(res: Response, what: string): Promise<Record<string, unknown>> {
  const body = await res.text();
  if (!res.ok) throw new Error(`${what}: ${res.status} ${body.slice(0, 200)}`);
  const v: unknown = JSON.parse(body);
  if (typeof v !== 'object' || v === null) throw new Error(`${what}: not a JSON object`);
  return v as Record<string, unknown>;
}

function str(v: unknown, what: string): string {
  if (typeof v !== 'string') throw new Error(`${what} missing`);
  return v;
}

/** Registers a user on the server at `baseUrl` and returns its channel and stream key. */
export async function registerStreamer(
  baseUrl: string,
  username = `streamer_${Math.random().toString(36).slice(2, 10)}`,
): Promise<Streamer> {
  const reg = await json(
    await fetch(`${baseUrl}/api/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, password: 'correct horse battery' }),
    }),
    'register',
  );
  const authorization = `Bearer ${str(reg.token, 'session token')}`;
  const me = await json(await fetch(`${baseUrl}/api/live/streams/me`, { headers: { authorization } }), 'my channel');
  const key = await json(await fetch(`${baseUrl}/api/live/streams/me/key`, { headers: { authorization } }), 'stream key');
  const id = str(me.id, 'channel id');
  return { id, streamKey: str(key.streamKey, 'stream key'), authorization, whipUrl: `${baseUrl}/whip`, whepUrl: `${baseUrl}/whep/${id}` };
}

/** Resolves once the channel reports `status: 'live'` (media has arrived), or throws after `timeoutMs`. */
export async function waitLive(baseUrl: string, channelId: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const res = await fetch(`${baseUrl}/api/live/streams/${channelId}`);
    last = `${res.status} ${await res.text()}`;
    if (res.ok && /"status":"live"/.test(last)) return;
    if (Date.now() > deadline) throw new Error(`channel ${channelId} not live after ${timeoutMs} ms: ${last.slice(0, 200)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
