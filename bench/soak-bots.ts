/**
 * A soak bots process (forked by {@link SoakBots}): runs its share of the
 * publishers and viewer bots, feeds every viewer's packet arrivals (kind,
 * sequence number, time) into its own SoakChecker, and reports the verdict
 * and how late its own event loop ran (a bot stall, not a server one).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { ObsPublisher, SocketClient, SocketViewer, WhepViewer, type MediaReceiver } from '@whipcast/testkit';
import type { ConsumerView } from '@whipcast/signaling/protocol';
import { SoakChecker } from './soak-check.ts';
import type { SoakBotsCommand, SoakBotsReply, SoakPublisherSpec, SoakViewerSpec } from './soak-protocol.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const send = (m: SoakBotsReply) => process.send?.(m);

interface Running {
  spec: SoakViewerSpec;
  receiver: MediaReceiver;
  /** True for packets of a stream the viewer shows (null: every stream; WHEP has one per kind). */
  shown: ((ssrc: number) => boolean) | null;
  /** Pauses and resumes its consumers on the server (socket viewers only). */
  stall?(forMs: number): Promise<void>;
  close(): void;
}

const publishers: ObsPublisher[] = [];
const viewers: Running[] = [];
const joinErrors: string[] = [];
/** A fault asked for that could not be made (so a run cannot pass for not having been tested). */
const stallErrors: string[] = [];
let checker: SoakChecker | null = null;
/** Each publisher's frames sent when the window started. */
let framesAtMeasure: number[] = [];
const loop = monitorEventLoopDelay({ resolution: 20 });

async function publish(p: SoakPublisherSpec): Promise<void> {
  const pub = await ObsPublisher.publish({
    url: `${p.url}/whip`,
    token: p.key,
    video: { ...p.video, seconds: Math.max(4, p.video.keyframeInterval * 2), profile: 'baseline' },
  });
  publishers.push(pub);
  await pub.connected(15_000);
}

async function watch(spec: SoakViewerSpec): Promise<Running> {
  if (spec.via === 'socket') {
    const socket = await SocketClient.connect(spec.url);
    const v = new SocketViewer(socket, spec.channelId, { frames: false });
    const close = () => {
      v.close();
      socket.close();
    };
    await v.start().catch((err: unknown) => {
      close();
      throw err;
    });
    // What the web player shows: the instant-start (catch-up) consumers, then, at `dvr.switch`, the
    // standby (live) ones; the catch-up ones linger a moment after the switch and are not shown.
    const ssrcOf = (c: ConsumerView) => (c.rtpParameters as { encodings: { ssrc: number }[] }).encodings[0]!.ssrc;
    let shownConsumers = v.consumers.filter((c) => !c.standby);
    let shownSsrcs = new Set(shownConsumers.map(ssrcOf));
    const standby = v.consumers.filter((c) => c.standby);
    if (standby.length)
      void socket
        .waitFor('dvr.switch', (f) => f.transportId === v.transportId, 600_000)
        .then(
          () => {
            shownConsumers = standby;
            shownSsrcs = new Set(standby.map(ssrcOf));
          },
          () => {},
        );
    const stall = async (forMs: number) => {
      const paused = shownConsumers;
      for (const c of paused) await socket.request({ t: 'rtc.pause', consumerId: c.id });
      await sleep(forMs);
      for (const c of paused) await socket.request({ t: 'rtc.resume', consumerId: c.id });
    };
    return { spec, receiver: v.receiver, shown: (ssrc) => shownSsrcs.has(ssrc), stall, close };
  }
  const v = await WhepViewer.watch({ url: `${spec.url}/whep/${spec.channelId}`, frames: false });
  try {
    await v.connected(15_000);
  } catch (err) {
    v.close();
    throw err;
  }
  return { spec, receiver: v.receiver, shown: null, close: () => v.close() };
}

/** Joins with retries: a channel goes live a moment after its publisher connects. */
async function join(spec: SoakViewerSpec): Promise<Running> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await watch(spec);
    } catch (err) {
      if (attempt >= 5) throw new Error(`${spec.name}: ${err instanceof Error ? err.message : String(err)}`);
      await sleep(1000);
    }
  }
}

async function start(m: Extract<SoakBotsCommand, { t: 'start' }>): Promise<void> {
  for (const p of m.publishers) await publish(p);
  const joins = m.viewers.map(async (spec, i) => {
    await sleep(i * m.joinSpacingMs);
    try {
      viewers.push(await join(spec));
    } catch (err) {
      joinErrors.push(err instanceof Error ? err.message : String(err));
    }
  });
  await Promise.all(joins);
}

function measure(m: Extract<SoakBotsCommand, { t: 'measure' }>): void {
  const c = new SoakChecker({ maxGapMs: m.maxGapMs, maxLossFraction: m.maxLossFraction });
  checker = c;
  framesAtMeasure = publishers.map((p) => p.counters.frames);
  const at = performance.now();
  for (const v of viewers) {
    c.addViewer(v.spec.name, at);
    const shown = v.shown;
    v.receiver.onPacket((kind, ssrc, seq, marker, t) => {
      if (!shown || shown(ssrc)) c.packet(v.spec.name, kind, seq, t, marker, ssrc);
    });
    const stall = v.spec.stall;
    const pause = v.stall;
    if (stall && pause)
      setTimeout(
        () =>
          void pause(stall.forMs).catch((err: unknown) => {
            stallErrors.push(`${v.spec.name}: the stall failed: ${err instanceof Error ? err.message : String(err)}`);
          }),
        stall.afterMs,
      );
  }
  loop.reset();
  loop.enable();
}

function finish(): void {
  const judged = checker!.finish(performance.now());
  const failures = [...judged.failures, ...stallErrors];
  const verdict = { ...judged, failures, ok: failures.length === 0 };
  loop.disable();
  send({
    t: 'result',
    verdict,
    eventLoopMaxMs: loop.max / 1e6,
    publisherFrames: publishers.map((p, i) => p.counters.frames - (framesAtMeasure[i] ?? 0)),
  });
}

function closeAll(): void {
  for (const v of viewers.splice(0)) v.close();
  for (const p of publishers.splice(0)) p.drop();
}

process.on('message', (raw: unknown) => {
  const m = raw as SoakBotsCommand;
  if (m.t === 'start')
    start(m).then(
      () => send({ t: 'ready', viewers: viewers.length, joinErrors }),
      (err: unknown) => send({ t: 'error', message: err instanceof Error ? err.message : String(err) }),
    );
  else if (m.t === 'measure') measure(m);
  else if (m.t === 'finish') finish();
  else if (m.t === 'close') {
    closeAll();
    setTimeout(() => process.exit(0), 200);
  }
});
process.on('disconnect', () => {
  closeAll();
  process.exit(0);
});
send({ t: 'up' });
