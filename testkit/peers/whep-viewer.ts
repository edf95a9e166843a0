/**
 * A WHEP viewer on libdatachannel: recvonly audio + video, receives real SRTP
 * and hands every RTP packet to a MediaReceiver (frame reassembly, keyframe
 * and SPS/PPS checks, capture-stamp latency). Doubles as a benchmark bot.
 */
import nodeDataChannel, { type PeerConnection, type Track } from 'node-datachannel';
import { deleteSession, postSdp, stripCandidates, type SdpExchange } from './http.ts';
import { MediaReceiver, type PictureSizeReader } from './receiver.ts';
import { WhipRefused } from './obs-publisher.ts';
import { TRANSPORT_CC_URI, TransportCcReceiver, withProbationSsrc } from '../rtp/transport-cc.ts';

/** The id mediasoup's routers give the transport-wide sequence extension (the server keeps only extensions with its own ids). */
const TRANSPORT_CC_ID = 5;

export interface WhepViewerOptions {
  url: string;
  token?: string;
  /** Defaults to both. */
  audio?: boolean;
  /** Reassemble frames and read stamps (default); false only counts packets (see MediaReceiver). */
  frames?: boolean;
  /** Rewrites the server's answer before it is applied (e.g. `ImpairedPeer.rewriteSdp`: watch through a bad link). */
  rewriteAnswer?: (sdp: string) => string | Promise<string>;
  /**
   * Offer transport-wide congestion control and send its feedback, as a browser does: the server can then estimate
   * this viewer's bandwidth and pick its simulcast layer. Off, the server estimates nothing for it.
   */
  congestionControl?: boolean;
  /** Reads the picture size a video packet announces (see `MediaReceiver`). */
  pictureSize?: PictureSizeReader;
}

export class WhepViewer {
  readonly receiver: MediaReceiver;
  exchange: SdpExchange | null = null;
  #pc: PeerConnection;
  #tracks: Track[] = [];
  #video: Track;
  #connected: Promise<void>;
  /** Sends transport-wide feedback once the answer accepted the extension (`congestionControl`). */
  transportCc: TransportCcReceiver | null = null;

  private constructor(readonly opts: WhepViewerOptions) {
    this.#pc = new nodeDataChannel.PeerConnection('whep', { iceServers: [] });
    // Payload types are learned from the answer; the receiver classifies by them.
    this.receiver = new MediaReceiver(
      { audio: new Set(), h264: new Set() },
      { frames: opts.frames ?? true, ...(opts.pictureSize ? { pictureSize: opts.pictureSize } : {}) },
    );
    if (opts.audio !== false) {
      const audio = new nodeDataChannel.Audio('0', 'RecvOnly');
      audio.addOpusCodec(111);
      this.#tracks.push(this.#pc.addTrack(audio));
    }
    // libdatachannel sends no RTCP of ours on a receive-only track: with congestion control the video m-line is
    // sendrecv (the server answers sendonly and sends nothing back on it)
    const video = new nodeDataChannel.Video('1', opts.congestionControl ? 'SendRecv' : 'RecvOnly');
    const codecs = [102, 104, 96];
    video.addH264Codec(102, 'profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1');
    video.addH264Codec(104, 'profile-level-id=640c1f;packetization-mode=1;level-asymmetry-allowed=1');
    video.addVP8Codec(96);
    if (opts.congestionControl) {
      video.parseSdpLine(`a=extmap:${TRANSPORT_CC_ID} ${TRANSPORT_CC_URI}`);
      for (const pt of codecs) video.parseSdpLine(`a=rtcp-fb:${pt} transport-cc`);
    }
    this.#video = this.#pc.addTrack(video);
    this.#tracks.push(this.#video);
    for (const t of this.#tracks) {
      // Sends receiver reports, like a browser would (but no NACKs: libdatachannel asks for no retransmission).
      t.setMediaHandler(new nodeDataChannel.RtcpReceivingSession());
      t.onMessage((m) => {
        this.transportCc?.received(m); // the sequence is transport-wide
        this.receiver.push(m);
      });
    }
    this.#connected = new Promise((resolve, reject) => {
      this.#pc.onStateChange((s) => {
        if (s === 'connected') resolve();
        if (s === 'failed' || s === 'closed') {
          this.transportCc?.close(); // no feedback on a dead connection's tracks
          reject(new Error(`viewer peer connection ${s}`));
        }
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
    const ccId = opts.congestionControl ? transportCcId(ex.answer) : null;
    if (ccId !== null)
      v.transportCc = new TransportCcReceiver({ extensionId: ccId, send: (rtcp) => v.#video.isOpen() && v.#video.sendMessageBinary(rtcp) });
    const answer = opts.rewriteAnswer ? await opts.rewriteAnswer(ex.answer) : ex.answer;
    v.#pc.setRemoteDescription(ccId !== null ? withProbationSsrc(answer) : answer, 'answer');
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
    this.transportCc?.close();
    this.#pc.close();
  }
}

/** The id of the transport-wide sequence extension in the answer's video section, or null when it was not accepted. */
function transportCcId(sdp: string): number | null {
  const video = sdp.split(/^(?=m=)/m).find((m) => m.startsWith('m=video'));
  const m = video ? new RegExp(`^a=extmap:(\\d+)(?:/\\w+)? ${TRANSPORT_CC_URI.replace(/[.]/g, '\\.')}\\r?$`, 'm').exec(video) : null;
  return m ? Number(m[1]) : null;
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
