/** The WHIP/WHEP HTTP exchange both bots do. */
export interface SdpExchange {
  status: number;
  answer: string;
  /** Absolute session URL (Location resolved against the endpoint, query cleared — as OBS does). */
  location: string | null;
  etag: string | null;
  headers: Headers;
  body: string;
}

export async function postSdp(url: string, offer: string, token?: string, timeoutMs = 8000): Promise<SdpExchange> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/sdp', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: offer,
    signal: AbortSignal.timeout(timeoutMs),
  });
  const body = await res.text();
  const loc = res.headers.get('location');
  const base = new URL(url);
  base.search = '';
  return {
    status: res.status,
    // OBS strips anything before v=0.
    answer: body.includes('v=0') ? body.slice(body.indexOf('v=0')) : '',
    location: loc ? new URL(loc, base).toString() : null,
    etag: res.headers.get('etag'),
    headers: res.headers,
    body,
  };
}

export async function deleteSession(location: string, token?: string): Promise<number> {
  const res = await fetch(location, {
    method: 'DELETE',
    headers: token ? { authorization: `Bearer ${token}` } : {},
    signal: AbortSignal.timeout(5000),
  });
  await res.arrayBuffer();
  return res.status;
}

/** OBS posts its offer before ICE gathering: no candidates in it. */
export function stripCandidates(sdp: string): string {
  return sdp
    .split('\r\n')
    .filter((l) => !l.startsWith('a=candidate:') && l !== 'a=end-of-candidates')
    .join('\r\n');
}
