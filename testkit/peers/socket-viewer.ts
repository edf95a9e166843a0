/**
 * A viewer that uses the socket protocol the web player (mediasoup-client)
 * uses: rtc.capabilities → rtc.transport → rtc.consume → rtc.connect →
 * rtc.resume, with libdatachannel as the WebRTC peer. Like mediasoup-client,
 * it turns the server's transport and consumer parameters into a remote SDP
 * offer and answers it.
 */
import nodeDataChannel, { type PeerConnection, type Track } from 'node-datachannel';
import type { ConsumerView, RtpCapabilities, TransportView } from '@whipcast/signaling/protocol';
import { MediaReceiver, type PictureSizeReader } from './receiver.ts';
import { MEDIASOUP_PROBATION_SSRC, TRANSPORT_CC_URI, TransportCcReceiver } from '../rtp/transport-cc.ts';
import type { SocketClient } from '../socket-client.ts';

interface Codec {
  mimeType: string;
  payloadType: number;
  clockRate: number;
  channels?: number;
  parameters?: Record<string, unknown>;
  rtcpFeedback?: { type: string; parameter?: string }[];
}

/** What a libdatachannel peer can receive, as mediasoup RTP capabilities. */
export const BOT_RTP_CAPABILITIES: RtpCapabilities = {
  codecs: [
    { kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2, preferredPayloadType: 100, parameters: {}, rtcpFeedback: [] },
    {
      kind: 'video',
      mimeType: 'video/H264',
      clockRate: 90000,
      preferredPayloadType: 101,
      parameters: { 'packetization-mode': 1, 'profile-level-id': '42e01f', 'level-asymmetry-allowed': 1 },
      rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }],
    },
  ],
  headerExtensions: [],
};

/** The same with transport-wide congestion control (the bot sends its feedback): mediasoup estimates the bot's bandwidth. */
export const BOT_RTP_CAPABILITIES_CC: RtpCapabilities = {
  codecs: BOT_RTP_CAPABILITIES.codecs!.map((c) =>
    c.kind === 'video' ? { ...c, rtcpFeedback: [...(c.rtcpFeedback ?? []), { type: 'transport-cc' }] } : c,
  ),
  headerExtensions: [{ kind: 'video', uri: TRANSPORT_CC_URI, preferredId: 5, direction: 'sendrecv' }],
};

/**
 * The server's side as a remote offer for libdatachannel. `sendrecv`: the m-lines say sendrecv, so libdatachannel
 * lets the bot send its own RTCP on them (mediasoup never reads the answer's directions).
 */
export function recvOffer(t: TransportView, consumers: ConsumerView[], opts: { sendrecv?: boolean } = {}): string {
  const ice = t.iceParameters as { usernameFragment: string; password: string };
  const fp = (t.dtlsParameters as { fingerprints: { algorithm: string; value: string }[] }).fingerprints.find(
    (f) => f.algorithm === 'sha-256',
  )!;
  const cands = (
    t.iceCandidates as {
      foundation: string;
      protocol: string;
      priority: number;
      address: string;
      port: number;
      type: string;
      tcpType?: string;
    }[]
  )
    .filter((c) => c.protocol === 'udp')
    .map((c) => `a=candidate:${c.foundation} 1 ${c.protocol} ${c.priority} ${c.address} ${c.port} typ ${c.type}`);
  const lines = [
    'v=0',
    'o=- 1 1 IN IP4 0.0.0.0',
    's=-',
    't=0 0',
    'a=ice-lite',
    `a=group:BUNDLE ${consumers.map((c) => (c.rtpParameters as { mid: string }).mid).join(' ')}`,
  ];
  for (const c of consumers) {
    const p = c.rtpParameters as { mid: string; codecs: Codec[]; encodings: { ssrc: number }[]; rtcp?: { cname?: string } };
    const codec = p.codecs[0]!;
    lines.push(
      `m=${c.kind} 9 UDP/TLS/RTP/SAVPF ${codec.payloadType}`,
      'c=IN IP4 0.0.0.0',
      `a=mid:${p.mid}`,
      opts.sendrecv ? 'a=sendrecv' : 'a=sendonly',
    );
    lines.push(
      `a=ice-ufrag:${ice.usernameFragment}`,
      `a=ice-pwd:${ice.password}`,
      `a=fingerprint:${fp.algorithm} ${fp.value}`,
      'a=setup:actpass',
    );
    lines.push('a=rtcp-mux', 'a=rtcp-rsize');
    lines.push(
      `a=rtpmap:${codec.payloadType} ${codec.mimeType.split('/')[1]}/${codec.clockRate}${codec.channels ? `/${codec.channels}` : ''}`,
    );
    const fmtp = Object.entries(codec.parameters ?? {})
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(';');
    if (fmtp) lines.push(`a=fmtp:${codec.payloadType} ${fmtp}`);
    for (const fb of codec.rtcpFeedback ?? [])
      lines.push(`a=rtcp-fb:${codec.payloadType} ${fb.type}${fb.parameter ? ` ${fb.parameter}` : ''}`);
    const ssrc = p.encodings[0]!.ssrc;
    lines.push(`a=ssrc:${ssrc} cname:${p.rtcp?.cname ?? 'whipcast'}`, `a=msid:whipcast ${c.kind}`);
    // mediasoup's bandwidth probes (padding on an SSRC no SDP names) reach the bot only if named
    if (opts.sendrecv && c.kind === 'video' && c === consumers.find((x) => x.kind === 'video'))
      lines.push(`a=ssrc:${MEDIASOUP_PROBATION_SSRC} cname:probator`);
    lines.push(...cands, 'a=end-of-candidates');
  }
  return lines.join('\r\n') + '\r\n';
}

export class SocketViewer {
  readonly receiver: MediaReceiver;
  #pc: PeerConnection | null = null;
  /** Held so node-datachannel does not garbage-collect the tracks (and silently stop delivering). */
  readonly #tracks: Track[] = [];
  #transport: TransportView | null = null;
  /** Every consumer ever offered, in m-line order (a re-offer keeps the old m-lines, as mediasoup-client does). */
  #offered: ConsumerView[] = [];
  transportId = '';
  consumers: ConsumerView[] = [];

  readonly #rewriteOffer: ((sdp: string) => string | Promise<string>) | undefined;
  readonly #congestionControl: boolean;
  /** Sends transport-wide feedback when the video consumer carries the extension (`congestionControl`). */
  transportCc: TransportCcReceiver | null = null;

  /**
   * `opts.frames: false` only counts packets (see MediaReceiver): a cheaper benchmark bot.
   * `opts.rewriteOffer` rewrites the server's side before it is applied (e.g. `ImpairedPeer.rewriteSdp`).
   * `opts.congestionControl` asks for transport-wide congestion control and sends its feedback, as a browser does.
   * `opts.pictureSize` reads the picture size video packets announce (see MediaReceiver).
   */
  constructor(
    readonly socket: SocketClient,
    readonly streamId: string,
    opts: {
      frames?: boolean;
      rewriteOffer?: (sdp: string) => string | Promise<string>;
      congestionControl?: boolean;
      pictureSize?: PictureSizeReader;
    } = {},
  ) {
    this.#rewriteOffer = opts.rewriteOffer;
    this.#congestionControl = opts.congestionControl ?? false;
    this.receiver = new MediaReceiver(
      { audio: new Set(), h264: new Set() },
      { frames: opts.frames ?? true, ...(opts.pictureSize ? { pictureSize: opts.pictureSize } : {}) },
    );
  }

  async start(): Promise<void> {
    await this.consume(await this.open());
  }

  /**
   * Makes the receive transport only (a channel that is not live yet): `consume(transport)` once it goes live
   * (`stream.live`, pushed to the channel's room), as the web player does.
   */
  async open(): Promise<TransportView> {
    const { socket, streamId } = this;
    await socket.request({ t: 'rtc.capabilities', streamId });
    const t = await socket.request({ t: 'rtc.transport', streamId });
    this.transportId = t.id;
    this.#transport = t;
    return t;
  }

  async consume(t?: TransportView): Promise<void> {
    const { consumers } = await this.socket.request({
      t: 'rtc.consume',
      transportId: this.transportId,
      rtpCapabilities: this.#congestionControl ? BOT_RTP_CAPABILITIES_CC : BOT_RTP_CAPABILITIES,
    });
    this.#adopt(consumers);
    if (!t) return;
    const pc = new nodeDataChannel.PeerConnection('socket-viewer', { iceServers: [] });
    this.#pc = pc;
    const video = consumers.find((c) => c.kind === 'video')?.rtpParameters as
      { headerExtensions?: { uri: string; id: number }[] } | undefined;
    const ccId = video?.headerExtensions?.find((e) => e.uri === TRANSPORT_CC_URI)?.id;
    pc.onTrack((track) => {
      this.#tracks.push(track);
      track.setMediaHandler(new nodeDataChannel.RtcpReceivingSession());
      // the sequence is transport-wide: every track's packets are reported, through the first track
      if (this.#congestionControl && ccId !== undefined && !this.transportCc)
        this.transportCc = new TransportCcReceiver({ extensionId: ccId, send: (rtcp) => track.sendMessageBinary(rtcp) });
      track.onMessage((m) => {
        this.transportCc?.received(m);
        this.receiver.push(m);
      });
    });
    pc.setRemoteDescription(await this.#offer(t), 'offer');
    const answer = pc.localDescription();
    if (!answer) throw new Error('libdatachannel made no answer');
    const fp = /a=fingerprint:sha-256 (\S+)/.exec(answer.sdp);
    if (!fp?.[1]) throw new Error('libdatachannel answered without a sha-256 fingerprint');
    await this.socket.request({
      t: 'rtc.connect',
      transportId: this.transportId,
      dtlsParameters: { role: 'client', fingerprints: [{ algorithm: 'sha-256', value: fp[1] }] },
    });
    this.receiver.startedAt = performance.now();
    for (const c of consumers) await this.socket.request({ t: 'rtc.resume', consumerId: c.id });
  }

  /** DVR: seek on the same transport; resolves once the new consumers are negotiated and resumed. */
  async seek(target: { offsetMs: number } | { deltaMs: number }): Promise<{ behindLiveMs: number; live: boolean }> {
    const r = await this.socket.request({ t: 'dvr.seek', transportId: this.transportId, ...target });
    await this.#switchTo(r.consumers);
    return { behindLiveMs: r.behindLiveMs, live: r.live };
  }

  /** DVR: holds the picture. */
  async pause(): Promise<void> {
    await this.socket.request({ t: 'dvr.pause', transportId: this.transportId });
  }

  /** DVR: plays on from where it paused; on a shared replay that played on meanwhile, on new consumers (resolves once they are resumed). */
  async resume(): Promise<{ behindLiveMs?: number; moved: boolean }> {
    const r = await this.socket.request({ t: 'dvr.resume', transportId: this.transportId });
    if (r.consumers) await this.#switchTo(r.consumers);
    return { ...(r.behindLiveMs !== undefined ? { behindLiveMs: r.behindLiveMs } : {}), moved: !!r.consumers };
  }

  /** DVR: back to the live edge. */
  async live(): Promise<void> {
    const r = await this.socket.request({ t: 'dvr.live', transportId: this.transportId });
    await this.#switchTo(r.consumers);
  }

  async #switchTo(consumers: ConsumerView[]): Promise<void> {
    if (!this.#pc || !this.#transport) throw new Error('start() first');
    this.#adopt(consumers);
    // a re-offer with the new m-lines appended; libdatachannel answers locally, mediasoup needs no answer
    this.#pc.setRemoteDescription(await this.#offer(this.#transport), 'offer');
    for (const c of consumers) await this.socket.request({ t: 'rtc.resume', consumerId: c.id });
  }

  async #offer(t: TransportView): Promise<string> {
    const sdp = recvOffer(t, this.#offered, { sendrecv: this.#congestionControl });
    return this.#rewriteOffer ? this.#rewriteOffer(sdp) : sdp;
  }

  #adopt(consumers: ConsumerView[]): void {
    this.consumers = consumers;
    for (const c of consumers) {
      if (!this.#offered.some((o) => o.id === c.id)) this.#offered.push(c);
      const pt = (c.rtpParameters as { codecs: Codec[] }).codecs[0]!.payloadType;
      (c.kind === 'audio' ? this.receiver.kinds.audio : this.receiver.kinds.h264).add(pt);
    }
  }

  close(): void {
    this.transportCc?.close();
    this.#pc?.close();
  }
}
