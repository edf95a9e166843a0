/**
 * Chat fan-out: K sockets in one room, one sender at M messages/s; delivery
 * rate and latency (send time carried in the text) for whipcast's chat
 * (validated, persisted, then broadcast) against a raw uWebSockets.js publish
 * of the same MessagePack frames (the baseline).
 */
import { encode, decode } from '@msgpack/msgpack';
import { SocketClient } from '@whipcast/testkit';
import WebSocket from 'ws';
import { startServer as startUws } from '@whipcast/signaling';
import { percentile } from './stats.ts';

export interface ChatBenchOptions {
  sockets: number;
  messagesPerSecond: number;
  seconds: number;
  progress(text: string): void;
}

export interface ChatResult {
  target: 'whipcast' | 'baseline';
  sockets: number;
  sent: number;
  deliveryPct: number;
  deliveriesPerSecond: number;
  latencyMs: { p50: number; p95: number; p99: number };
}

function summarise(target: ChatResult['target'], o: ChatBenchOptions, sent: number, latencies: number[], seconds: number): ChatResult {
  return {
    target,
    sockets: o.sockets,
    sent,
    deliveryPct: (100 * latencies.length) / Math.max(1, sent * o.sockets),
    deliveriesPerSecond: latencies.length / seconds,
    latencyMs: { p50: percentile(latencies, 50), p95: percentile(latencies, 95), p99: percentile(latencies, 99) },
  };
}

/** Sends `messagesPerSecond` for `seconds`, each text starting with its send time (ms); returns how many. */
async function sendAtRate(o: ChatBenchOptions, target: ChatResult['target'], send: (text: string) => void): Promise<number> {
  let sent = 0;
  const t0 = Date.now();
  while (Date.now() - t0 < o.seconds * 1000) {
    const due = Math.floor(((Date.now() - t0) / 1000) * o.messagesPerSecond);
    while (sent < due) send(`${Date.now()} message ${++sent}`);
    o.progress(`chat ${target}: ${sent} sent`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return sent;
}

export async function chatWhipcast(url: string, room: string, token: string, o: ChatBenchOptions): Promise<ChatResult> {
  const latencies: number[] = [];
  const clients: SocketClient[] = [];
  for (let i = 0; i < o.sockets; i++) {
    const c = await SocketClient.connect(url);
    await c.request({ t: 'chat.join', room });
    c.ws.on('message', (data: Buffer) => {
      const f = decode(data) as { t: string; message?: { text: string } };
      if (f.t === 'chat.message') latencies.push(Date.now() - Number(f.message!.text.split(' ')[0]));
    });
    clients.push(c);
    if (i % 50 === 0) o.progress(`chat whipcast: ${i}/${o.sockets} sockets`);
  }
  const sender = await SocketClient.connect(url);
  await sender.request({ t: 'auth', token });
  await sender.request({ t: 'chat.join', room });
  const sent = await sendAtRate(o, 'whipcast', (text) => {
    void sender.request({ t: 'chat.send', room, text }).catch(() => {});
  });
  await new Promise((r) => setTimeout(r, 1000));
  for (const c of [...clients, sender]) c.close();
  return summarise('whipcast', o, sent, latencies, o.seconds);
}

export async function chatBaseline(o: ChatBenchOptions): Promise<ChatResult> {
  const server = await startUws<object>({
    host: '127.0.0.1',
    port: 0,
    maxBodyBytes: 1024,
    trustProxy: false,
    onError: () => {},
    http: async () => new Response('baseline', { status: 404 }),
    websocket: {
      path: '/ws',
      maxPayloadLength: 65536,
      maxBackpressure: 1 << 20,
      idleTimeoutSeconds: 60,
      upgrade: () => ({}),
      open: (s) => s.subscribe('room'),
      message: (_s, data) => void server.publish('room', new Uint8Array(data)),
      drain: () => {},
      close: () => {},
    },
  });
  const url = `ws://127.0.0.1:${server.port}/ws`;
  const latencies: number[] = [];
  const sockets: WebSocket[] = [];
  for (let i = 0; i < o.sockets; i++) {
    const ws = new WebSocket(url);
    await new Promise((r) => ws.once('open', r));
    ws.on('message', (data: Buffer) => {
      const f = decode(data) as { text: string };
      latencies.push(Date.now() - Number(f.text.split(' ')[0]));
    });
    sockets.push(ws);
  }
  const sender = new WebSocket(url);
  await new Promise((r) => sender.once('open', r));
  const sent = await sendAtRate(o, 'baseline', (text) => sender.send(encode({ t: 'chat.message', text })));
  await new Promise((r) => setTimeout(r, 1000));
  // the sender is subscribed too: its own echoes are not counted as deliveries to the K sockets
  for (const ws of [...sockets, sender]) ws.close();
  server.stopListening();
  return summarise('baseline', o, sent, latencies, o.seconds);
}
