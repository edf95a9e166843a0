/**
 * Bad links for benchmark bots: `--impair loss=5,delay=40,jitter=10,kbps=1000` (every bot) and
 * `--mixed 1/3:kbps=1000` (a share of them), turned into testkit `LinkImpairment`s that a
 * `UdpRelay` per bot applies between it and the server.
 */
import type { LinkImpairment } from '@whipcast/testkit';

export interface BotImpairment {
  /** As given on the command line, for the report. */
  spec: string;
  /** What the bot receives (server → bot): everything, the bandwidth cap included. */
  toPeer: LinkImpairment;
  /** What the bot sends (RTCP, ICE): the same loss, delay and jitter, no cap. */
  toServer: LinkImpairment;
  /** The link turns bad this many seconds after the bot connected (its ICE and DTLS set-up on a clean link); unset: from its first packet. */
  afterSeconds?: number;
}

export interface ImpairedShare {
  /** Bots `i` with `i % den < num` are impaired: an even spread over the run. */
  num: number;
  den: number;
  impairment: BotImpairment;
}

const KEYS = ['loss', 'burst', 'delay', 'jitter', 'kbps', 'queue', 'after'] as const;

/**
 * `loss` % random loss; `burst` mean length of loss bursts in packets (the same average loss,
 * Gilbert–Elliott); `delay`, `jitter` ms; `kbps` a cap; `queue` ms of the cap the bottleneck holds;
 * `after` s from the bot's connection until the link turns bad (unset: bad from the start).
 */
export function parseImpairment(spec: string): BotImpairment {
  const v: Partial<Record<(typeof KEYS)[number], number>> = {};
  for (const part of spec.split(',').filter(Boolean)) {
    const [k, raw] = part.split('=');
    const n = Number(raw);
    if (!KEYS.includes(k as (typeof KEYS)[number]) || raw === undefined || !Number.isFinite(n) || n < 0)
      throw new Error(`--impair: "${part}" is not one of ${KEYS.map((x) => `${x}=<n>`).join(', ')}`);
    v[k as (typeof KEYS)[number]] = n;
  }
  if (v.loss !== undefined && v.loss >= 100) throw new Error('--impair: loss is a percentage below 100');
  const p = (v.loss ?? 0) / 100;
  const common: LinkImpairment = {
    ...(v.burst && v.burst > 1 && p > 0
      ? { burst: { pBadToGood: 1 / v.burst, pGoodToBad: p / v.burst / (1 - p), lossInBad: 1 } }
      : p > 0
        ? { loss: p }
        : {}),
    ...(v.delay ? { delayMs: v.delay } : {}),
    // delay varies but order is kept, as on most real paths (the bots have no jitter buffer to reorder)
    ...(v.jitter ? { jitterMs: v.jitter, inOrder: true } : {}),
  };
  const toPeer: LinkImpairment = {
    ...common,
    ...(v.kbps ? { kbps: v.kbps } : {}),
    ...(v.kbps && v.queue ? { queueBytes: Math.max(3000, Math.round((v.kbps * v.queue) / 8)) } : {}),
  };
  if (!Object.keys(toPeer).length) throw new Error(`--impair: "${spec}" impairs nothing`);
  return { spec, toPeer, toServer: common, ...(v.after !== undefined ? { afterSeconds: v.after } : {}) };
}

/** `1/3:kbps=1000`: a third of the bots behind that link. */
export function parseMixed(arg: string): ImpairedShare {
  const m = /^(\d+)\/(\d+):(.+)$/.exec(arg);
  if (!m || Number(m[1]) < 1 || Number(m[1]) > Number(m[2])) throw new Error('--mixed is <num>/<den>:<impairment>, e.g. 1/3:kbps=1000');
  return { num: Number(m[1]), den: Number(m[2]), impairment: parseImpairment(m[3]!) };
}

/** Whether the i-th bot (in join order) is impaired. */
export const isImpaired = (share: ImpairedShare, i: number): boolean => i % share.den < share.num;
