/** The HTTP API, typed by the server's own schemas (type-only import). */
import type {
  ApiAuthResult,
  ApiChatBan,
  ApiChatBanList,
  ApiChatRestriction,
  ApiRecording,
  ApiRecordingList,
  ApiClip,
  ApiClipCreated,
  ApiStream,
  ApiStreamKey,
  ApiStreamList,
} from '$shared/api.ts';

export type { ApiStream, ApiStreamKey, ApiAuthResult, ApiChatBan, ApiRecording, ApiClip, ApiClipCreated };

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const TOKEN_KEY = 'whipcast.token';
export const storedToken = (): string | null => (typeof localStorage === 'undefined' ? null : localStorage.getItem(TOKEN_KEY));
export function storeToken(token: string | null): void {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const token = storedToken();
  const res = await fetch(path, {
    method,
    headers: {
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  if (res.status === 204) return undefined as T;
  const data = (await res.json().catch(() => null)) as { error?: { code: string; message: string } } | null;
  if (!res.ok) throw new ApiError(res.status, data?.error?.code ?? 'error', data?.error?.message ?? res.statusText);
  return data as T;
}

export const api = {
  register: (username: string, password: string) => call<ApiAuthResult>('POST', '/api/auth/register', { username, password }),
  login: (username: string, password: string) => call<ApiAuthResult>('POST', '/api/auth/login', { username, password }),
  logout: () => call<void>('POST', '/api/auth/logout'),
  liveStreams: () => call<ApiStreamList>('GET', '/api/live/streams'),
  stream: (id: string) => call<ApiStream>('GET', `/api/live/streams/${encodeURIComponent(id)}`),
  myStream: () => call<ApiStream>('GET', '/api/live/streams/me'),
  updateStream: (id: string, fields: { title: string; description: string; saveRecordings?: boolean }) =>
    call<ApiStream>('PUT', `/api/live/streams/${id}`, fields),
  myKey: () => call<ApiStreamKey>('GET', '/api/live/streams/me/key'),
  rotateKey: () => call<ApiStreamKey>('POST', '/api/live/streams/me/key'),
  myBans: () => call<ApiChatBanList>('GET', '/api/live/streams/me/bans'),
  recordings: (streamId: string) => call<ApiRecordingList>('GET', `/api/live/streams/${encodeURIComponent(streamId)}/recordings`),
  recording: (id: string) => call<ApiRecording>('GET', `/api/recordings/${encodeURIComponent(id)}`),
  deleteRecording: (id: string) => call<void>('DELETE', `/api/recordings/${encodeURIComponent(id)}`),
  /** Cuts a clip of a live channel: the last `durationS` seconds, ending `endOffsetMs` behind live. */
  createClip: (streamId: string, body: { durationS: number; endOffsetMs: number }) =>
    call<ApiClipCreated>('POST', `/api/live/streams/${encodeURIComponent(streamId)}/clips`, body),
  clip: (id: string) => call<ApiClip>('GET', `/api/clips/${encodeURIComponent(id)}`),
  deleteClip: (id: string) => call<void>('DELETE', `/api/clips/${encodeURIComponent(id)}`),
  chatRestriction: (id: string) => call<ApiChatRestriction>('GET', `/api/live/streams/${encodeURIComponent(id)}/chat/restriction`),
};
