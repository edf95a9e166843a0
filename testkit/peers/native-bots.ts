/**
 * Native counting bots: receive-only WebRTC viewers held by one C process
 * (native-bots.c: ICE, DTLS with OpenSSL, RTP counted from the cleartext
 * header, no SRTP decryption) for benchmarks that need hundreds of viewers
 * on one core. This side does the signaling (WHEP, or the socket protocol as
 * SocketViewer does) and reads the counters: packets, bytes, sequence gaps,
 * frame ends and freezes, as a counting-only MediaReceiver gives them. No
 * frame reassembly, capture stamps or latency: sample those with
 * libdatachannel bots (WhepViewer, SocketViewer).
 */
import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { ConsumerView, TransportView } from '@whipcast/signaling/protocol';
import { deleteSession, postSdp } from './http.ts';
import { WhipRefused } from './obs-publisher.ts';
import { newStreamStats, newVideoStats, type ReceivedCounts, type StreamStats, type VideoStats } from './receiver.ts';
import { BOT_RTP_CAPABILITIES } from './socket-viewer.ts';
import type { SocketClient } from '../socket-client.ts';

const SOURCE = fileURLToPath(new URL('./native-bots.c', import.meta.url));
const CFLAGS = ['-O2', '-Wall', '-Wextra'];

/**
 * The compiled bots program: built with gcc (needs libssl-dev) on first use into a cache directory keyed by the
 * source's hash, so an edit rebuilds it and concurrent test processes share one build.
 */
export async function nativeBotsBinary(): Promise<string> {
  const src = await readFile(SOURCE);
  const hash = createHash('sha256').update(src).update(CFLAGS.join(' ')).digest('hex').slice(0, 16);
  const dir = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'whipcast', 'native-bots');
  const bin = join(dir, `bots-${hash}`);
  if (existsSync(bin)) return bin;
  await mkdir(dir, { recursive: true });
  const tmp = `${bin}.${process.pid}.tmp`;
  try {
    await promisify(execFile)('gcc', [...CFLAGS, '-o', tmp, SOURCE, '-lssl', '-lcrypto']);
  } catch (err) {
    const detail = err instanceof Error && 'stderr' in err ? String(err.stderr) : String(err);
    throw new Error(`compiling ${SOURCE} failed (it needs gcc and libssl-dev): ${detail}`);
  }
  await rename(tmp, bin);
  return bin;
}

/** ICE ufrag/pwd characters (RFC 8839 ice-char: letters, digits, + and /). */
const iceString = (bytes: number) => randomBytes(bytes).toString('base64').replace(/=+$/, '');

/** One bot's state in the bots process. */
export type NativeBotState = 'new' | 'connected' | 'failed' | 'closed';

/** Where a bot connects: the server's ICE candidate and parameters, its fingerprint, and which payload types are what. */
interface PeerParameters {
  ip: string;
  port: number;
  ufrag: string;
  pwd: string;
  /** The server's sha-256 certificate fingerprint (checked after the handshake). */
  fingerprint: string;
  audio: number[];
  video: number[];
}

/** A viewer in the bots process. `receiver` holds its counters as of the last `NativeBots.refresh()`. */
export class NativeBot {
  readonly receiver: ReceivedCounts = { audio: newStreamStats(), video: newVideoStats() };
  state: NativeBotState = 'new';
  /** Why it failed (ICE, DTLS, a refused command). */
  error: Error | null = null;
  /** performance.now() when its signaling started (for time to first frame). */
  readonly startedAt = performance.now();
  /** The WHEP session URL (WHEP bots). */
  location: string | null = null;
  /** The transport and its consumers (socket bots; standby consumers are an instant start's live ones, see `dvr.switch`). */
  transportId: string | null = null;
  consumers: ConsumerView[] = [];
  readonly #connected: Promise<void>;
  #settle: { resolve: () => void; reject: (err: Error) => void } | null = null;
  #leave: (() => Promise<void>) | null = null;

  constructor(
    readonly id: string,
    readonly bots: NativeBots,
  ) {
    this.#connected = new Promise((resolve, reject) => (this.#settle = { resolve, reject }));
    this.#connected.catch(() => {});
  }

  /** Resolves once ICE and DTLS are done (media may flow); rejects with the reason it failed, or after `timeoutMs`. */
  async connected(timeoutMs = 15_000): Promise<void> {
    let t: NodeJS.Timeout | undefined;
    await Promise.race([
      this.#connected,
      new Promise(
        (_, rej) => (t = setTimeout(() => rej(new Error(`native bot ${this.id} did not connect in ${timeoutMs} ms`)), timeoutMs)),
      ),
    ]).finally(() => clearTimeout(t));
  }

  /** Leaves the way a player does (WHEP DELETE, socket close), then closes. */
  async leave(): Promise<void> {
    const leave = this.#leave;
    this.#leave = null;
    await leave?.().catch(() => {});
    this.close();
  }

  /** Drops the peer in the bots process (idempotent). */
  close(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.#settle?.reject(new Error(`native bot ${this.id} closed`));
    this.bots.remove(this);
  }

  /** @internal How it leaves (set by NativeBots). */
  onLeave(leave: () => Promise<void>): void {
    this.#leave = leave;
  }

  /** @internal A state event from the bots process. */
  settle(state: 'connected' | 'failed', reason?: string): void {
    if (this.state === 'closed') return;
    this.state = state;
    if (state === 'connected') this.#settle?.resolve();
    else {
      this.error = new Error(`native bot ${this.id}: ${reason ?? 'failed'}`);
      this.#settle?.reject(this.error);
    }
  }
}

type Counters = [string, number, number, number, number, number, number, number, number, number, number];

type BotsEvent =
  | { ev: 'ready'; fingerprint: string }
  | { ev: 'state'; id: string; state: 'connected' | 'failed'; reason?: string }
  | { ev: 'frame'; id: string }
  | { ev: 'error'; id?: string; reason: string }
  | { ev: 'dump'; peers: Record<string, Counters> };

/**
 * The bots process and its viewers. Events: `error` (Error: the process died or refused a command that no bot owns).
 * `close()` ends the process and every bot (idempotent).
 */
export class NativeBots extends EventEmitter<{ error: [Error] }> {
  readonly #bots = new Map<string, NativeBot>();
  readonly #dumps: ((peers: Record<string, Counters>) => void)[] = [];
  #next = 0;
  #closed = false;

  private constructor(
    readonly child: ChildProcessWithoutNullStreams,
    /** The bots' certificate fingerprint (sha-256), the same for every bot. */
    readonly fingerprint: string,
    lines: AsyncIterator<string>,
  ) {
    super();
    void this.#read(lines);
    child.once('exit', (code, signal) => {
      const err = new Error(`the native bots process exited (${signal ?? code})`);
      for (const bot of this.#bots.values()) bot.settle('failed', err.message);
      for (const resolve of this.#dumps.splice(0)) resolve({});
      if (!this.#closed) this.emit('error', err);
      this.#closed = true;
    });
  }

  /** Builds the program if needed and starts it. */
  static async start(): Promise<NativeBots> {
    const child = spawn(await nativeBotsBinary(), [], { stdio: ['pipe', 'pipe', 'pipe'] });
    child.stderr.on('data', (d: Buffer) => process.stderr.write(`native bots: ${d.toString()}`));
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const first = await lines.next();
    const ready = first.done ? null : (JSON.parse(first.value) as BotsEvent);
    if (ready?.ev !== 'ready') {
      child.kill();
      throw new Error(`the native bots process did not start: ${first.done ? 'no output' : first.value}`);
    }
    return new NativeBots(child, ready.fingerprint, lines);
  }

  /** The process id (its CPU is the bots' CPU). */
  get pid(): number | null {
    return this.child.pid ?? null;
  }

  get size(): number {
    return this.#bots.size;
  }

  /**
   * A WHEP viewer (H.264 + Opus, receive only) of `url` (the endpoint, e.g. `${server}/whep/${channel}`).
   * `rewriteAnswer` rewrites the server's answer before the bot uses it (e.g. `ImpairedPeer.rewriteSdp`).
   */
  async whep(url: string, opts: { token?: string; rewriteAnswer?: (sdp: string) => string | Promise<string> } = {}): Promise<NativeBot> {
    const { token } = opts;
    const bot = this.#bot();
    const ufrag = iceString(6);
    const pwd = iceString(18);
    const ex = await postSdp(url, whepOffer(ufrag, pwd, this.fingerprint), token).catch((err: unknown) => {
      bot.close();
      throw err;
    });
    if (ex.status !== 201) {
      bot.close();
      throw new WhipRefused(ex);
    }
    bot.location = ex.location;
    const location = ex.location;
    if (location) bot.onLeave(async () => void (await deleteSession(location, token)));
    try {
      this.#add(bot, ufrag, parseAnswer(opts.rewriteAnswer ? await opts.rewriteAnswer(ex.answer) : ex.answer));
    } catch (err) {
      await bot.leave();
      throw err;
    }
    return bot;
  }

  /**
   * A viewer over the socket protocol, as SocketViewer does it (rtc.capabilities → rtc.transport → rtc.consume →
   * rtc.connect, then the bot's ICE and DTLS, and rtc.resume). The socket stays the caller's.
   */
  async socket(socket: SocketClient, streamId: string): Promise<NativeBot> {
    const bot = this.#bot();
    try {
      await socket.request({ t: 'rtc.capabilities', streamId });
      const t = await socket.request({ t: 'rtc.transport', streamId });
      bot.transportId = t.id;
      const { consumers } = await socket.request({ t: 'rtc.consume', transportId: t.id, rtpCapabilities: BOT_RTP_CAPABILITIES });
      bot.consumers = consumers;
      await socket.request({
        t: 'rtc.connect',
        transportId: t.id,
        dtlsParameters: { role: 'client', fingerprints: [{ algorithm: 'sha-256', value: this.fingerprint }] },
      });
      this.#add(bot, iceString(6), transportPeer(t, consumers));
      for (const c of consumers) await socket.request({ t: 'rtc.resume', consumerId: c.id });
    } catch (err) {
      bot.close();
      throw err;
    }
    return bot;
  }

  /** Reads every bot's counters from the process into its `receiver`. */
  async refresh(): Promise<void> {
    if (this.#closed) return;
    const peers = await new Promise<Record<string, Counters>>((resolve) => {
      this.#dumps.push(resolve);
      this.#send('dump');
    });
    const now = performance.now();
    for (const [id, c] of Object.entries(peers)) {
      const bot = this.#bots.get(id);
      if (!bot) continue;
      const [, aPackets, aBytes, aLost, vPackets, vBytes, vLost, frames, freezes, frozenMs, sinceFrameMs] = c;
      update(bot.receiver.audio, aPackets, aBytes, aLost);
      const v: VideoStats = bot.receiver.video;
      update(v, vPackets, vBytes, vLost);
      v.frames = frames;
      v.freezes = freezes;
      v.frozenMs = frozenMs;
      v.lastFrameAt = sinceFrameMs >= 0 ? now - sinceFrameMs : null;
    }
  }

  /** @internal Drops a bot's peer (NativeBot.close()). */
  remove(bot: NativeBot): void {
    if (this.#bots.delete(bot.id)) this.#send(`remove ${bot.id}`);
  }

  /** Ends the process and every bot (idempotent). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const bot of [...this.#bots.values()]) bot.close();
    this.child.stdin.end();
    this.child.kill();
  }

  #bot(): NativeBot {
    if (this.#closed) throw new Error('the native bots process is closed');
    const bot = new NativeBot(`b${this.#next++}`, this);
    this.#bots.set(bot.id, bot);
    return bot;
  }

  #add(bot: NativeBot, ufrag: string, p: PeerParameters): void {
    if (bot.state === 'closed') throw new Error(`native bot ${bot.id} closed`);
    const list = (pts: number[]) => (pts.length ? pts.join(',') : '-');
    this.#send(['add', bot.id, p.ip, p.port, p.ufrag, p.pwd, ufrag, p.fingerprint || '-', list(p.audio), list(p.video)].join(' '));
  }

  #send(line: string): void {
    if (!this.#closed || line.startsWith('remove')) this.child.stdin.write(`${line}\n`);
  }

  async #read(lines: AsyncIterator<string>): Promise<void> {
    for (let l = await lines.next(); !l.done; l = await lines.next()) {
      const e = JSON.parse(l.value) as BotsEvent;
      if (e.ev === 'dump') this.#dumps.shift()?.(e.peers);
      else if (e.ev === 'state') this.#bots.get(e.id)?.settle(e.state, e.reason);
      else if (e.ev === 'frame') {
        // the first frame end, pushed at once (waiting for it needs no refresh)
        const v = this.#bots.get(e.id)?.receiver.video;
        if (v && v.frames === 0) {
          v.frames = 1;
          v.lastFrameAt = performance.now();
        }
      } else if (e.ev === 'error') {
        const bot = e.id === undefined ? undefined : this.#bots.get(e.id);
        if (bot) bot.settle('failed', e.reason);
        else this.emit('error', new Error(`native bots: ${e.reason}`));
      }
    }
  }
}

function update(s: StreamStats, packets: number, bytes: number, lost: number): void {
  s.packets = packets;
  s.bytes = bytes;
  s.lost = lost;
}

/**
 * A receive-only WHEP offer: the codecs and feedback WhepViewer's libdatachannel offer has (Opus; H.264 and VP8 with
 * nack, pli, goog-remb), so the server does the same work for either bot; the bots' fingerprint, DTLS client
 * (`setup:active`).
 */
export function whepOffer(ufrag: string, pwd: string, fingerprint: string): string {
  const common = [
    'c=IN IP4 0.0.0.0',
    `a=ice-ufrag:${ufrag}`,
    `a=ice-pwd:${pwd}`,
    `a=fingerprint:sha-256 ${fingerprint}`,
    'a=setup:active',
    'a=recvonly',
    'a=rtcp-mux',
  ];
  const feedback = (pt: number) => [`a=rtcp-fb:${pt} nack`, `a=rtcp-fb:${pt} nack pli`, `a=rtcp-fb:${pt} goog-remb`];
  const h264 = (pt: number, profile: string) => [
    `a=rtpmap:${pt} H264/90000`,
    `a=fmtp:${pt} profile-level-id=${profile};packetization-mode=1;level-asymmetry-allowed=1`,
    ...feedback(pt),
  ];
  return (
    [
      'v=0',
      `o=- ${randomBytes(6).readUIntBE(0, 6)} 1 IN IP4 127.0.0.1`,
      's=-',
      't=0 0',
      'a=group:BUNDLE 0 1',
      'm=audio 9 UDP/TLS/RTP/SAVPF 111',
      ...common,
      'a=mid:0',
      'a=rtpmap:111 opus/48000/2',
      'a=fmtp:111 minptime=10;useinbandfec=1',
      'm=video 9 UDP/TLS/RTP/SAVPF 102 104 96',
      ...common,
      'a=mid:1',
      'a=rtcp-rsize',
      ...h264(102, '42e01f'),
      ...h264(104, '640c1f'),
      'a=rtpmap:96 VP8/90000',
      ...feedback(96),
    ].join('\r\n') + '\r\n'
  );
}

/** The server's side of a WHEP answer: its UDP candidate, ICE parameters, fingerprint, and the payload types by kind. */
export function parseAnswer(sdp: string): PeerParameters {
  const attr = (name: string) => new RegExp(`^a=${name}:(.+?)\\r?$`, 'm').exec(sdp)?.[1];
  const cand = /^a=candidate:\S+ \d+ udp \d+ (\S+) (\d+) typ host/im.exec(sdp);
  const ufrag = attr('ice-ufrag');
  const pwd = attr('ice-pwd');
  const fp = /^a=fingerprint:sha-256 (\S+)/m.exec(sdp)?.[1];
  if (!cand || !ufrag || !pwd || !fp) throw new Error('the WHEP answer lacks a UDP host candidate, ICE ufrag/pwd or a sha-256 fingerprint');
  const p: PeerParameters = { ip: cand[1]!, port: Number(cand[2]), ufrag, pwd, fingerprint: fp, audio: [], video: [] };
  for (const section of sdp.split(/^(?=m=)/m).slice(1)) {
    const kind = section.startsWith('m=audio') ? p.audio : section.startsWith('m=video') ? p.video : null;
    for (const m of section.matchAll(/^a=rtpmap:(\d+) ([\w-]+)\//gm))
      if (kind && !/^(rtx|red|ulpfec|flexfec-03)$/i.test(m[2]!)) kind.push(Number(m[1]));
  }
  return p;
}

/** The same from a socket transport and its consumers. */
export function transportPeer(t: TransportView, consumers: ConsumerView[]): PeerParameters {
  const cand = t.iceCandidates.find((c) => c.protocol === 'udp');
  const fp = t.dtlsParameters.fingerprints.find((f) => f.algorithm === 'sha-256');
  if (!cand || !fp) throw new Error('the transport has no UDP candidate or no sha-256 fingerprint');
  const p: PeerParameters = {
    ip: cand.address,
    port: cand.port,
    ufrag: t.iceParameters.usernameFragment,
    pwd: t.iceParameters.password,
    fingerprint: fp.value,
    audio: [],
    video: [],
  };
  for (const c of consumers) {
    const pt = c.rtpParameters.codecs[0]?.payloadType;
    if (pt !== undefined) (c.kind === 'audio' ? p.audio : p.video).push(pt);
  }
  return p;
}
