/**
 * A WHEP viewer on libdatachannel: recvonly audio + video, receives real SRTP
 * and hands every RTP packet to a MediaReceiver (frame reassembly, keyframe
 * and SPS/PPS checks, capture-stamp latency). Doubles as a benchmark bot.
 */
import nodeDataChannel, { type PeerConnection, type Track } from 'node-datachannel';
import { deleteSession, postSdp, stripCandidates, type SdpExchange } from './http.ts';
import { MediaReceiver } from './receiver.ts';
import { WhipRefused } from './obs-publisher.ts';

export interface WhepViewerOptions {
  url: string;
  token?: string;
  /** Defaults to both. */
  audio?: boolean;
  /** Reassemble frames and read stamps (default); false only counts packets (see MediaReceiver). */
  frames?: boolean;
  /** Rewrites the server's answer before it is applied (e.g. `ImpairedPeer.rewriteSdp`: watch through a bad link). */
  rewriteAnswer?: (sdp: string) => string | Promise<string>;
}

export class WhepViewer {
  readonly receiver: MediaReceiver;
  exchange: SdpExchange | null = null;
  #pc: PeerConnection;
  #tracks: Track[] = [];
  #connected: Promise<void>;

  private constructor(readonly opts: WhepViewerOptions) {
    this.#pc = new nodeDataChannel.PeerConnection('whep', { iceServers: [] });
    // Payload types are learned from the answer; the receiver classifies by them.
    this.receiver = new MediaReceiver({ audio: new Set(), h264: new Set() }, { frames: opts.frames ?? true });
    if (opts.audio !== false) {
      const audio = new nodeDataChannel.Audio('0', 'RecvOnly');
      audio.addOpusCodec(111);
      this.#tracks.push(this.#pc.addTrack(audio));
    }
    const video = new nodeDataChannel.Video('1', 'RecvOnly');
    video.addH264Codec(102, 'profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1');
    video.addH264Codec(104, 'profile-level-id=640c1f;packetization-mode=1;level-asymmetry-allowed=1');
    video.addVP8Codec(96);
    this.#tracks.push(this.#pc.addTrack(video));
    for (const t of this.#tracks) {
      // Sends receiver reports and NACKs, like a browser would.
      t.setMediaHandler(new nodeDataChannel.RtcpReceivingSession());
      t.onMessage((m) => this.receiver.push(m));
    }
    this.#connected = new Promise((resolve, reject) => {
      this.#pc.onStateChange((s) => {
        if (s === 'connected') resolve();
        if (s === 'failed' || s === 'closed') reject(new Error(`viewer peer connection ${s}`));
      });
    });
    this.#connected.catch(() => {});
  }

  static async watch(opts: WhepViewerOptions): Promise<WhepViewer> {
    const v = new WhepViewer(opts);
    v.#pc.setLocalDescription();
    const offer = v.#pc.localDescription();
    const ex = await postSdp(opts.url, stripCandidates(offer!.sdp), opts.token);
    v.exchange = ex;
    if (ex.status !== 201) {
      v.#pc.close();
      throw new WhipRefused(ex);
    }
    classifyPayloadTypes(ex.answer, v.receiver);
    v.#pc.setRemoteDescription(opts.rewriteAnswer ? await opts.rewriteAnswer(ex.answer) : ex.answer, 'answer');
    v.receiver.startedAt = performance.now();
    return v;
  }

  async connected(timeoutMs = 10_000): Promise<void> {
    let t: NodeJS.Timeout | undefined;
    await Promise.race([
      this.#connected,
      new Promise((_, rej) => (t = setTimeout(() => rej(new Error('viewer did not connect')), timeoutMs))),
    ]).finally(() => clearTimeout(t));
  }

  get state(): string {
    return this.#pc.state();
  }

  async stop(): Promise<number> {
    const status = this.exchange?.location ? await deleteSession(this.exchange.location, this.opts.token) : 0;
    this.close();
    return status;
  }

  close(): void {
    this.#pc.close();
  }
}

/** Reads the answer's rtpmaps and tells the receiver which payload types are Opus and H.264. */
export function classifyPayloadTypes(sdp: string, receiver: MediaReceiver): void {
  for (const m of sdp.matchAll(/^a=rtpmap:(\d+) ([\w-]+)\//gm)) {
    const pt = Number(m[1]);
    const codec = m[2]!.toLowerCase();
    if (codec === 'opus') receiver.kinds.audio.add(pt);
    if (codec === 'h264') receiver.kinds.h264.add(pt);
  }
}
