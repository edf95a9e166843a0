/**
 * One peer behind an impaired link: every server address the peer learns from
 * ICE candidates is replaced by a `UdpRelay` in front of it (TCP candidates are
 * dropped so the peer cannot go around the relay). Works for a peer in Node
 * (rewrite the SDP it receives with `rewriteSdp`) and for a browser page
 * (`impairPage` wraps the page's RTCPeerConnection so whatever signaling the
 * page uses — WHEP, the player's socket — goes through the relay). Other peers
 * of the same server keep their perfect link.
 */
import { emptyCounters, type LinkImpairment } from './link.ts';
import { UdpRelay, type RelayCounters, type RelayDirection } from './udp-relay.ts';

export interface ImpairedPeerOptions {
  /** What the peer receives (server → peer). */
  toPeer?: LinkImpairment;
  /** What the peer sends (peer → server). */
  toServer?: LinkImpairment;
  /** Address the relays listen on (default 127.0.0.1). */
  listenAddress?: string;
  /** Random source for loss and jitter. */
  random?: () => number;
}

export class ImpairedPeer {
  #relays = new Map<string, Promise<UdpRelay>>();
  #impairment: Record<RelayDirection, LinkImpairment>;
  #closed = false;

  constructor(private readonly opts: ImpairedPeerOptions = {}) {
    this.#impairment = { toPeer: opts.toPeer ?? {}, toServer: opts.toServer ?? {} };
  }

  /** The relay standing in front of `address:port` (made on first use). */
  relayFor(address: string, port: number): Promise<UdpRelay> {
    if (this.#closed) return Promise.reject(new Error('impaired peer closed'));
    const key = `${address}:${port}`;
    let r = this.#relays.get(key);
    if (!r) {
      r = UdpRelay.create({
        target: { address, port },
        listen: { address: this.opts.listenAddress ?? '127.0.0.1' },
        toPeer: this.#impairment.toPeer,
        toServer: this.#impairment.toServer,
        ...(this.opts.random ? { random: this.opts.random } : {}),
      });
      this.#relays.set(key, r);
    }
    return r;
  }

  /** The relays made so far. */
  async relays(): Promise<UdpRelay[]> {
    return Promise.all(this.#relays.values());
  }

  /** Changes one direction's impairment on every relay, now and later (e.g. lifts a cap). */
  async setImpairment(direction: RelayDirection, impairment: LinkImpairment): Promise<void> {
    this.#impairment[direction] = impairment;
    for (const r of await this.relays()) r.setImpairment(direction, impairment);
  }

  /** Counters per direction, summed over the relays. */
  async counters(): Promise<Record<RelayDirection, RelayCounters>> {
    const sum = (d: RelayDirection, all: UdpRelay[]): RelayCounters => {
      const out: RelayCounters = { ...emptyCounters(), sent: 0, sentBytes: 0 };
      for (const r of all) {
        const c = r.counters()[d];
        for (const k of Object.keys(out) as (keyof RelayCounters)[])
          out[k] = k === 'maxQueueBytes' ? Math.max(out[k], c[k]) : out[k] + c[k];
      }
      return out;
    };
    const all = await this.relays();
    return { toPeer: sum('toPeer', all), toServer: sum('toServer', all) };
  }

  /** One ICE candidate (`candidate:…`, with or without `a=`): UDP → the relay's address, TCP → null (drop). */
  async rewriteCandidate(line: string): Promise<string | null> {
    const m = /^((?:a=)?candidate:\S+ \d+ )(\S+)( \d+ )(\S+) (\d+)( typ .*)$/i.exec(line.trim());
    if (!m) return line;
    if (m[2]!.toLowerCase() !== 'udp') return null;
    const relay = await this.relayFor(m[4]!, Number(m[5]));
    const { address, port } = relay.address;
    return `${m[1]}${m[2]}${m[3]}${address} ${port}${m[6]}`;
  }

  /** An SDP with its UDP candidates moved onto relays and its TCP candidates removed. */
  async rewriteSdp(sdp: string): Promise<string> {
    const eol = sdp.includes('\r\n') ? '\r\n' : '\n';
    const out: string[] = [];
    for (const line of sdp.split(eol)) {
      if (!line.startsWith('a=candidate:')) {
        out.push(line);
        continue;
      }
      const r = await this.rewriteCandidate(line);
      if (r !== null) out.push(r);
    }
    return out.join(eol);
  }

  /** Closes every relay; idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const relays = await Promise.allSettled(this.#relays.values());
    for (const r of relays) if (r.status === 'fulfilled') r.value.close();
  }
}

/**
 * A page whose scripts can be prepared before they run: playwright-core's Page
 * or BrowserContext (`addInitScript`), puppeteer-core's Page (`evaluateOnNewDocument`).
 */
export interface ScriptablePage {
  exposeFunction(name: string, fn: (...args: never[]) => unknown): Promise<unknown>;
  addInitScript?(script: string): Promise<unknown>;
  evaluateOnNewDocument?(script: string): Promise<unknown>;
}

const BINDING = '__whipcastImpairCandidate';

// Plain JavaScript run in every document of the page before its own scripts.
const WRAP_PEER_CONNECTION = `(() => {
  const PC = window.RTCPeerConnection;
  if (!PC || PC.__whipcastImpaired) return;
  PC.__whipcastImpaired = true;
  const rewrite = (line) => window.${BINDING}(line);
  const rewriteSdp = async (sdp) => {
    const eol = sdp.includes('\\r\\n') ? '\\r\\n' : '\\n';
    const out = [];
    for (const line of sdp.split(eol)) {
      if (!line.startsWith('a=candidate:')) { out.push(line); continue; }
      const r = await rewrite(line);
      if (r !== null) out.push(r);
    }
    return out.join(eol);
  };
  const srd = PC.prototype.setRemoteDescription;
  PC.prototype.setRemoteDescription = async function (desc, ...rest) {
    if (desc && desc.sdp) desc = { type: desc.type, sdp: await rewriteSdp(desc.sdp) };
    return srd.call(this, desc, ...rest);
  };
  const aic = PC.prototype.addIceCandidate;
  PC.prototype.addIceCandidate = async function (c, ...rest) {
    if (c && c.candidate) {
      const r = await rewrite(c.candidate);
      if (r === null) return;
      c = { candidate: r, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex, usernameFragment: c.usernameFragment };
    }
    return aic.call(this, c, ...rest);
  };
})();`;

/**
 * Puts `peer`'s relays between the page's WebRTC connections and the server:
 * call before the page loads (navigates); applies to every document it loads.
 */
export async function impairPage(page: ScriptablePage, peer: ImpairedPeer): Promise<void> {
  await page.exposeFunction(BINDING, (line: string) => peer.rewriteCandidate(line));
  if (page.addInitScript) await page.addInitScript(WRAP_PEER_CONNECTION);
  else if (page.evaluateOnNewDocument) await page.evaluateOnNewDocument(WRAP_PEER_CONNECTION);
  else throw new Error('impairPage: the page can neither addInitScript nor evaluateOnNewDocument');
}
