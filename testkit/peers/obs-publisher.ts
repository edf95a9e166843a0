/**
 * A WHIP publisher that behaves like OBS Studio's WHIP output on the wire: it is
 * built on libdatachannel (OBS's own WebRTC stack, via node-datachannel), offers
 * Opus PT 111 on mid 0 and H.264 PT 96 on mid 1 with OBS's fixed `42e01f` fmtp,
 * sends the offer without candidates, authenticates with a bearer stream key,
 * answers NACKs, ignores PLI/FIR, and stops with a DELETE.
 *
 * The media is real: ffmpeg-encoded H.264 access units (each stamped with its
 * capture time in an SEI NAL unit) and Opus packets, paced in real time.
 * Beyond what OBS does, it can send frame-numbered video (`numbered`) and VP8,
 * VP9 or AV1 (`codec: 'VP8' | 'VP9' | 'AV1'`, always numbered; no SEI stamps
 * in them), packetized as browsers do (RFC 7741, RFC 9628, AV1 RTP).
 *
 * `simulcast` sends H.264 layers the way OBS 32.1 does: rids "0".."N-1" with
 * "0" the full picture, `a=simulcast:send 0;1;…`, header extension 1 = mid and
 * 2 = rtp-stream-id on every video packet, one SSRC per layer, every layer
 * keyed on the same frames.
 */
import nodeDataChannel, { type PeerConnection, type Track } from 'node-datachannel';
import { randomInt } from 'node:crypto';
import {
  DEFAULT_H264,
  h264Fixture,
  numberedH264Fixture,
  numberedLayerFixtures,
  numberedIvfFixture,
  numberedVp8Fixture,
  opusFixture,
  type H264Options,
} from '../media/fixtures.ts';
import { nowUs, packetizeH264, withStamp } from '../rtp/h264.ts';
import { buildRtp, buildSenderReport, isRtcp, parseRtcp } from '../rtp/packet.ts';
import { packetizeAv1 } from '../rtp/av1.ts';
import { packetizeVp8 } from '../rtp/vp8.ts';
import { packetizeVp9 } from '../rtp/vp9.ts';
import { deleteSession, postSdp, stripCandidates, type SdpExchange } from './http.ts';

export const OBS_H264_FMTP = 'profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1';

/** Header extension ids OBS 32.1 uses for simulcast. */
const MID_EXT_ID = 1;
const RID_EXT_ID = 2;
const VIDEO_MID = '1';

export interface ObsPublisherOptions {
  /** WHIP endpoint, e.g. http://127.0.0.1:8080/whip */
  url: string;
  /** Stream key sent as the bearer token (omitted when undefined, as OBS does with an empty field). */
  token?: string;
  /** Picture size, rate, bitrate, GOP and length of the fixture (the publisher loops it). */
  video?: Partial<H264Options>;
  /**
   * Send the frame-numbered fixture (frame i shows i, see `readFrameNumber`). It is
   * 180 s long unless `video.seconds` says otherwise; the numbers start again at 0
   * when the publisher loops it, so keep a test shorter than the fixture.
   */
  numbered?: boolean;
  /** Video codec: H.264 (what OBS sends, default), or VP8/VP9/AV1 (numbered; VP8 for Firefox viewers). */
  codec?: 'H264' | 'VP8' | 'VP9' | 'AV1';
  audio?: boolean;
  /** Start sending only when told (`startMedia()`), e.g. to test "live on first media". */
  deferMedia?: boolean;
  /** Encoder profile signalled in fmtp; OBS always sends 42e01f. */
  fmtp?: string;
  /**
   * Send simulcast layers like OBS 32.1: the scales of the layers below the full picture, rid "1", "2", …
   * in that order (`true`: ½ and ¼, e.g. 1280x720 + 640x360 + 320x180). Each layer's bitrate scales with its
   * area (at least 100 kbit/s). `{ layers: n }`: OBS 32.1's own ladder for "Simulcast Layers" n — sizes and
   * bitrates in steps of 1/n of the full picture's (n = 3 at 1280x720 2500 kbit/s: + 852x480 1666 + 426x240 833).
   * H.264 only.
   */
  simulcast?: true | readonly number[] | { layers: number };
  /**
   * Send an RTCP Sender Report per stream (each layer, audio) every second, as OBS does (libdatachannel's
   * RtcpSrReporter). mediasoup switches a viewer between simulcast layers only once it can map every layer's
   * timestamps to capture time, which it learns from these: without them a bare mediasoup keeps each viewer on
   * the first layer it got.
   */
  senderReports?: boolean;
  /** Rewrites the server's answer before it is applied (e.g. `ImpairedPeer.rewriteSdp`: publish through a bad link). */
  rewriteAnswer?: (sdp: string) => string | Promise<string>;
}

export interface PublisherCounters {
  videoPackets: number;
  /** Video packets per simulcast layer, by rid number (index 0 = rid "0", the full picture); one entry without simulcast. */
  layerPackets: number[];
  audioPackets: number;
  frames: number;
  keyframes: number;
  nacksReceived: number;
  plisReceived: number;
}

export class ObsPublisher {
  readonly counters: PublisherCounters;
  /** The SSRC of the (full-resolution) video. */
  readonly videoSsrc = randomInt(1, 2 ** 31);
  /** Scales of the video layers, rid order (1 = the full picture); `[1]` without simulcast. */
  readonly layerScales: readonly number[];
  /** SSRC of each layer, rid order. */
  readonly layerSsrcs: readonly number[];
  readonly audioSsrc = randomInt(1, 2 ** 31);
  exchange: SdpExchange | null = null;
  #pc: PeerConnection;
  #video: Track;
  #audio: Track | null = null;
  #timers: NodeJS.Timeout[] = [];
  #connected: Promise<void>;
  #closed = false;
  #frameIndex = 0;
  #seq = { audio: randomInt(0, 0xffff) };
  /** Next sequence number per video layer (layers start far apart: the NACK responder keys its buffer by sequence number alone). */
  #videoSeq: number[];
  /** Per SSRC: packets and payload octets sent, and when the last Sender Report went (`senderReports`). */
  readonly #sent = new Map<number, { packets: number; octets: number; reportedAt: number }>();
  /** The layers follow OBS's ladder (`simulcast: { layers }`), not the area-scaled one. */
  readonly #obsLadder: boolean;

  private constructor(readonly opts: ObsPublisherOptions) {
    const obs = typeof opts.simulcast === 'object' && 'layers' in opts.simulcast ? opts.simulcast.layers : null;
    if (obs !== null && !(Number.isInteger(obs) && obs >= 1 && obs <= 4)) throw new Error('OBS sends 1 to 4 simulcast layers');
    if (obs !== null && opts.numbered) throw new Error("OBS's simulcast ladder is not available with the numbered fixture");
    const lower =
      obs !== null
        ? Array.from({ length: obs - 1 }, (_, i) => (obs - 1 - i) / obs)
        : opts.simulcast === true
          ? [0.5, 0.25]
          : ((opts.simulcast as readonly number[] | undefined) ?? []);
    this.#obsLadder = obs !== null;
    if (lower.length && opts.codec && opts.codec !== 'H264') throw new Error('simulcast layers are H.264 only');
    if (lower.some((k) => !(k > 0 && k < 1))) throw new Error('simulcast scales must be between 0 and 1');
    this.layerScales = [1, ...lower];
    this.layerSsrcs = this.layerScales.map((_, i) => (i === 0 ? this.videoSsrc : (this.videoSsrc + i) >>> 0 || 1));
    const seq0 = randomInt(0, 0xffff);
    this.#videoSeq = this.layerScales.map((_, i) => (seq0 + i * 0x5000) & 0xffff);
    this.counters = {
      videoPackets: 0,
      layerPackets: this.layerScales.map(() => 0),
      audioPackets: 0,
      frames: 0,
      keyframes: 0,
      nacksReceived: 0,
      plisReceived: 0,
    };
    this.#pc = new nodeDataChannel.PeerConnection('obs', { iceServers: [], disableAutoGathering: false });
    if (opts.audio !== false) {
      const audio = new nodeDataChannel.Audio('0', 'SendOnly');
      audio.addOpusCodec(111);
      audio.addSSRC(this.audioSsrc, 'obs', 'obs-stream', 'obs-audio');
      this.#audio = this.#pc.addTrack(audio);
      this.#audio.setMediaHandler(new nodeDataChannel.RtcpNackResponder(1024));
      this.#audio.onMessage((m) => this.#rtcp(m));
    }
    const video = new nodeDataChannel.Video(VIDEO_MID, 'SendOnly');
    if (opts.codec === 'VP8') video.addVP8Codec(96);
    else if (opts.codec === 'VP9') video.addVP9Codec(96);
    else if (opts.codec === 'AV1') video.addAV1Codec(96);
    else video.addVideoCodec(96, 'H264', opts.fmtp ?? OBS_H264_FMTP);
    if (this.simulcast) {
      video.parseSdpLine(`a=extmap:${MID_EXT_ID} urn:ietf:params:rtp-hdrext:sdes:mid`);
      video.parseSdpLine(`a=extmap:${RID_EXT_ID} urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id`);
      const rids = this.layerScales.map((_, i) => String(i));
      for (const rid of rids) video.parseSdpLine(`a=rid:${rid} send`);
      video.parseSdpLine(`a=simulcast:send ${rids.join(';')}`);
    }
    video.addSSRC(this.videoSsrc, 'obs', 'obs-stream', 'obs-video');
    this.#video = this.#pc.addTrack(video);
    this.#video.setMediaHandler(new nodeDataChannel.RtcpNackResponder(2048));
    this.#video.onMessage((m) => this.#rtcp(m));
    // The peer connection reports "connected" a moment before its tracks open; sending then throws.
    const tracks = [this.#video, ...(this.#audio ? [this.#audio] : [])];
    const tracksOpen = Promise.all(tracks.map((t) => new Promise<void>((resolve) => t.onOpen(() => resolve()))));
    this.#connected = new Promise<void>((resolve, reject) => {
      this.#pc.onStateChange((s) => {
        if (s === 'connected') void tracksOpen.then(() => resolve());
        if (s === 'failed' || s === 'closed') reject(new Error(`publisher peer connection ${s}`));
      });
    });
    this.#connected.catch(() => {});
  }

  /** Offers, POSTs, applies the answer. Throws with the HTTP status when the server refuses. */
  static async publish(opts: ObsPublisherOptions): Promise<ObsPublisher> {
    const p = new ObsPublisher(opts);
    try {
      await p.#negotiate();
    } catch (err) {
      p.#pc.close();
      throw err;
    }
    return p;
  }

  async #negotiate(): Promise<void> {
    this.#pc.setLocalDescription();
    const offer = this.#pc.localDescription();
    if (!offer) throw new Error('libdatachannel produced no offer');
    const ex = await postSdp(this.opts.url, stripCandidates(offer.sdp), this.opts.token);
    this.exchange = ex;
    if (ex.status !== 201) throw new WhipRefused(ex);
    if (!ex.location) throw new Error('201 without Location');
    const answer = this.opts.rewriteAnswer ? await this.opts.rewriteAnswer(ex.answer) : ex.answer;
    this.#pc.setRemoteDescription(answer, 'answer');
  }

  /** True when it sends simulcast layers. */
  get simulcast(): boolean {
    return this.layerScales.length > 1;
  }

  get location(): string {
    return this.exchange!.location!;
  }

  get state(): string {
    return this.#pc.state();
  }

  /** Resolves once ICE+DTLS are up; then starts media unless deferred. */
  async connected(timeoutMs = 10_000): Promise<void> {
    let t: NodeJS.Timeout | undefined;
    await Promise.race([
      this.#connected,
      new Promise((_, rej) => (t = setTimeout(() => rej(new Error('publisher did not connect')), timeoutMs))),
    ]).finally(() => clearTimeout(t));
    if (!this.opts.deferMedia) await this.startMedia();
  }

  /** Starts the paced media loops. */
  async startMedia(): Promise<void> {
    if (this.#timers.length) return;
    const source = await this.#videoSource();
    const fps = source.fps;
    const t0 = performance.now();
    const ts0 = randomInt(0, 2 ** 31);
    const sendVideo = (): void => {
      const due = Math.floor(((performance.now() - t0) * fps) / 1000) + 1;
      while (this.#frameIndex < due && !this.#closed) this.#sendFrame(source, ts0);
    };
    sendVideo();
    this.#timers.push(setInterval(sendVideo, 1000 / fps / 2));
    if (this.#audio) {
      const packets = await opusFixture();
      let i = 0;
      const ats0 = randomInt(0, 2 ** 31);
      const sendAudio = (): void => {
        const due = Math.floor((performance.now() - t0) / 20) + 1;
        while (i < due && !this.#closed) {
          const payload = packets[i % packets.length]!;
          const rtp = buildRtp(
            {
              payloadType: 111,
              sequenceNumber: this.#seq.audio++ & 0xffff,
              timestamp: (ats0 + i * 960) >>> 0,
              ssrc: this.audioSsrc,
              marker: false,
            },
            payload,
          );
          this.#send(this.#audio!, rtp);
          this.#report(this.#audio!, this.audioSsrc, (ats0 + i * 960) >>> 0, payload.length);
          this.counters.audioPackets++;
          i++;
        }
      };
      sendAudio();
      this.#timers.push(setInterval(sendAudio, 10));
    }
  }

  async #videoSource(): Promise<VideoSource> {
    const o = this.opts.video ?? {};
    if (this.simulcast) {
      const lower = this.layerScales.slice(1);
      const layers = this.opts.numbered
        ? await numberedLayerFixtures(o, lower)
        : await Promise.all(
            (this.#obsLadder
              ? obsLadder({ ...DEFAULT_H264, ...o }, this.layerScales.length)
              : this.layerScales.map((k) => scaledOptions({ ...DEFAULT_H264, ...o }, k))
            ).map((layer) => h264Fixture(layer)),
          );
      return {
        fps: layers[0]!.options.fps,
        frame: (i) => {
          const aus = layers.map((f) => f.frames[i % f.frames.length]!);
          const captureUs = nowUs();
          return {
            layers: aus.map((au) => packetizeH264(withStamp(au.nals, { frame: i, captureUs }))),
            keyframe: aus[0]!.keyframe,
          };
        },
      };
    }
    if (this.opts.codec === 'VP8') {
      const f = await numberedVp8Fixture(o);
      return {
        fps: f.options.fps,
        frame: (i) => {
          const frame = f.frames[i % f.frames.length]!;
          return { layers: [packetizeVp8(frame.data, i & 0x7fff)], keyframe: frame.keyframe };
        },
      };
    }
    if (this.opts.codec === 'VP9' || this.opts.codec === 'AV1') {
      const vp9 = this.opts.codec === 'VP9';
      const f = await numberedIvfFixture(vp9 ? 'vp9' : 'av1', o);
      const size = { width: f.options.width, height: f.options.height };
      return {
        fps: f.options.fps,
        frame: (i) => {
          const frame = f.frames[i % f.frames.length]!;
          return { layers: [vp9 ? packetizeVp9(frame.data, i & 0x7fff, size) : packetizeAv1(frame.data)], keyframe: frame.keyframe };
        },
      };
    }
    const f = await (this.opts.numbered ? numberedH264Fixture(o) : h264Fixture(o));
    return {
      fps: f.options.fps,
      frame: (i) => {
        const au = f.frames[i % f.frames.length]!;
        return { layers: [packetizeH264(withStamp(au.nals, { frame: i, captureUs: nowUs() }))], keyframe: au.keyframe };
      },
    };
  }

  #sendFrame(source: VideoSource, ts0: number): void {
    const i = this.#frameIndex++;
    const { layers, keyframe } = source.frame(i);
    const ts = (ts0 + Math.round((i * 90000) / source.fps)) >>> 0;
    layers.forEach((payloads, layer) => {
      const extensions = this.simulcast
        ? new Map([
            [MID_EXT_ID, Buffer.from(VIDEO_MID)],
            [RID_EXT_ID, Buffer.from(String(layer))],
          ])
        : undefined;
      payloads.forEach((payload, k) => {
        const sequenceNumber = this.#videoSeq[layer]!;
        this.#videoSeq[layer] = (sequenceNumber + 1) & 0xffff;
        const rtp = buildRtp(
          {
            payloadType: 96,
            sequenceNumber,
            timestamp: ts,
            ssrc: this.layerSsrcs[layer]!,
            marker: k === payloads.length - 1,
            ...(extensions ? { extensions } : {}),
          },
          payload,
        );
        this.#send(this.#video, rtp);
        this.#report(this.#video, this.layerSsrcs[layer]!, ts, payload.length);
        this.counters.videoPackets++;
        this.counters.layerPackets[layer]!++;
      });
    });
    this.counters.frames++;
    if (keyframe) this.counters.keyframes++;
  }

  /** Counts a packet sent on `ssrc` (media time `rtpTs` now) and, with `senderReports`, sends a report once a second. */
  #report(track: Track, ssrc: number, rtpTs: number, payloadBytes: number): void {
    if (!this.opts.senderReports) return;
    let s = this.#sent.get(ssrc);
    if (!s) this.#sent.set(ssrc, (s = { packets: 0, octets: 0, reportedAt: 0 }));
    s.packets++;
    s.octets += payloadBytes;
    const now = Date.now();
    if (now - s.reportedAt < 1000) return;
    s.reportedAt = now;
    this.#send(track, buildSenderReport(ssrc, now, rtpTs, s.packets, s.octets));
  }

  /** Sends unless the track closed under us (the server ended the session): then stops like OBS does. */
  #send(track: Track, rtp: Buffer): void {
    if (this.#closed) return;
    try {
      track.sendMessageBinary(rtp);
    } catch {
      this.drop();
    }
  }

  #rtcp(msg: Buffer): void {
    if (!isRtcp(msg)) return;
    const r = parseRtcp(msg);
    for (const n of r.nacks) this.counters.nacksReceived += n.seqs.length;
    this.counters.plisReceived += r.keyframeRequests.length; // OBS ignores them; we only count
  }

  /** Stops sending media but keeps the connection up (a frozen encoder). */
  pauseMedia(): void {
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
  }

  /** Stops media and tears the peer down without telling the server (a crash / network loss). */
  drop(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    this.#pc.close();
  }

  /** Stops like OBS's "Stop Streaming": DELETE on the session URL, then close. Returns the DELETE status. */
  async stop(): Promise<number> {
    const status = this.exchange?.location ? await deleteSession(this.location, this.opts.token) : 0;
    this.drop();
    return status;
  }
}

/** Encoded frames to send, by publisher frame index: RTP payloads per layer (rid order, the full picture first). */
interface VideoSource {
  fps: number;
  frame(i: number): { layers: Uint8Array[][]; keyframe: boolean };
}

/** A layer's fixture options: the picture scaled by `k` (even sizes), the bitrate by its area (at least 100 kbit/s). */
function scaledOptions(o: H264Options, k: number): H264Options {
  const even = (v: number) => Math.max(2, 2 * Math.round(v / 2));
  return { ...o, width: even(o.width * k), height: even(o.height * k), kbps: Math.max(100, Math.round(o.kbps * k * k)) };
}

/**
 * OBS 32.1's simulcast ladder for `n` layers, the full picture first: width, height and bitrate of layer i
 * (counting down from the full picture) are (n − i) steps of 1/n of the output's, sizes rounded down to even.
 */
export function obsLadder(o: H264Options, n: number): H264Options[] {
  const step = { width: Math.floor(o.width / n), height: Math.floor(o.height / n), kbps: Math.floor(o.kbps / n) };
  const even = (v: number) => v - (v % 2);
  return Array.from({ length: n }, (_, i) =>
    i === 0 ? o : { ...o, width: even(step.width * (n - i)), height: even(step.height * (n - i)), kbps: step.kbps * (n - i) },
  );
}

export class WhipRefused extends Error {
  constructor(readonly exchange: SdpExchange) {
    super(`WHIP POST refused: ${exchange.status} ${exchange.body.slice(0, 200)}`);
  }
  get status(): number {
    return this.exchange.status;
  }
}
