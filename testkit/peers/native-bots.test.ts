/**
 * Native counting bots against a real whipcast (a child process, one publisher): bots joining over WHEP and over
 * the socket protocol receive the publisher's packets with no loss and count what a libdatachannel bot counts over
 * the same seconds; a bot that cannot connect says why, and bad input leaves the others counting.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { NativeBots, type NativeBot } from './native-bots.ts';
import { ObsPublisher } from './obs-publisher.ts';
import { waitUntil, type ReceivedCounts } from './receiver.ts';
import { WhepViewer } from './whep-viewer.ts';
import { SocketClient } from '../socket-client.ts';
import { registerStreamer, waitLive, type Streamer } from '../streamer.ts';
import { startWhipcastProcess, type WhipcastProcess } from '../whipcast-process.ts';

const PER_PATH = 10;
let server: WhipcastProcess;
let streamer: Streamer;
let publisher: ObsPublisher;
let bots: NativeBots;

beforeAll(async () => {
  [server, bots] = await Promise.all([
    startWhipcastProcess({ WHIP_RATE_LIMIT_PER_MINUTE: '100000', WS_MAX_TRANSPORTS_PER_ADDRESS: '100000' }),
    NativeBots.start(),
  ]);
  streamer = await registerStreamer(server.url);
  publisher = await ObsPublisher.publish({
    url: streamer.whipUrl,
    token: streamer.streamKey,
    video: { kbps: 1000, width: 640, height: 360, keyframeInterval: 1, seconds: 2, profile: 'baseline' },
  });
  await publisher.connected();
  await waitLive(server.url, streamer.id);
});
afterAll(async () => {
  bots?.close();
  publisher?.drop();
  await server?.stop();
});

const counts = (r: ReceivedCounts) => ({
  video: r.video.packets,
  audio: r.audio.packets,
  lost: r.video.lost + r.audio.lost,
  frames: r.video.frames,
  freezes: r.video.freezes,
});
const minus = (a: ReturnType<typeof counts>, b: ReturnType<typeof counts>) => ({
  video: a.video - b.video,
  audio: a.audio - b.audio,
  lost: a.lost - b.lost,
  frames: a.frames - b.frames,
  freezes: a.freezes - b.freezes,
});

it(`${PER_PATH} bots over WHEP and ${PER_PATH} over the socket count what a libdatachannel bot counts`, { timeout: 40_000 }, async () => {
  const reference = await WhepViewer.watch({ url: streamer.whepUrl, frames: false });
  const sockets = await Promise.all(Array.from({ length: PER_PATH }, () => SocketClient.connect(server.url)));
  try {
    const natives: NativeBot[] = await Promise.all([
      ...Array.from({ length: PER_PATH }, () => bots.whep(streamer.whepUrl)),
      ...sockets.map((s) => bots.socket(s, streamer.id)),
    ]);
    await Promise.all([reference.connected(), ...natives.map((b) => b.connected())]);
    expect(natives.map((b) => b.state)).toEqual(natives.map(() => 'connected'));
    await waitUntil(() => [reference.receiver, ...natives.map((b) => b.receiver)].every((r) => r.video.frames > 0), 10_000, 'first frames');
    // a socket viewer starts from the GOP cache, replayed at 2x, then switches to the live consumers (the replay's
    // lingering for 1 s after): measure after that
    await Promise.all(
      natives.map((b, i) =>
        b.consumers.some((c) => c.standby)
          ? sockets[i - PER_PATH]!.waitFor('dvr.switch', (f) => f.transportId === b.transportId, 10_000)
          : null,
      ),
    );
    await new Promise((r) => setTimeout(r, 1300));

    await bots.refresh();
    const ref0 = counts(reference.receiver);
    const before = natives.map((b) => counts(b.receiver));
    const sent0 = { ...publisher.counters };
    await new Promise((r) => setTimeout(r, 4000));
    await bots.refresh();
    const ref = minus(counts(reference.receiver), ref0);
    const sent = {
      video: publisher.counters.videoPackets - sent0.videoPackets,
      audio: publisher.counters.audioPackets - sent0.audioPackets,
    };
    const got = natives.map((b, i) => minus(counts(b.receiver), before[i]!));

    // the reference saw the publisher's rate (~4 s of 1 Mbit/s video and 50 audio packets/s)
    expect(ref.video).toBeGreaterThan(0.9 * sent.video);
    expect(ref.audio).toBeGreaterThan(150);
    for (const [i, g] of got.entries()) {
      const what = `${i < PER_PATH ? 'WHEP' : 'socket'} bot ${natives[i]!.id}: ${JSON.stringify(g)} against ${JSON.stringify(ref)}`;
      expect(Math.abs(g.video - ref.video), what).toBeLessThanOrEqual(0.05 * ref.video);
      expect(Math.abs(g.audio - ref.audio), what).toBeLessThanOrEqual(0.05 * ref.audio);
      expect(Math.abs(g.frames - ref.frames), what).toBeLessThanOrEqual(Math.max(2, 0.05 * ref.frames));
      expect(g.lost, what).toBe(0);
      expect(g.freezes, what).toBe(0);
    }
    for (const b of natives) await b.leave();
    expect(bots.size).toBe(0);
  } finally {
    reference.close();
    for (const s of sockets) s.close();
  }
});

it('a bot that cannot connect says why; a bad command is refused and the others keep counting', { timeout: 20_000 }, async () => {
  const good = await bots.whep(streamer.whepUrl);
  // the server's ICE password is wrong: mediasoup answers the binding request with 401
  const bad = await bots.whep(streamer.whepUrl, {
    rewriteAnswer: (sdp) => sdp.replace(/^a=ice-pwd:.*$/gm, 'a=ice-pwd:wrongwrongwrongwrongwrong'),
  });
  await expect(bad.connected()).rejects.toThrow(/STUN error 401/);
  expect(bad.state).toBe('failed');
  const errors: Error[] = [];
  bots.on('error', (e) => errors.push(e));
  bots.child.stdin.write('add nonsense\nfly away\n');
  await waitUntil(() => errors.length === 2, 5000, 'the refusals');
  expect(errors.map((e) => e.message)).toEqual([expect.stringMatching(/add wants/), expect.stringMatching(/unknown command/)]);
  await good.connected();
  await waitUntil(() => good.receiver.video.frames > 0, 5000, 'the good bot frames');
  await bots.refresh();
  const packets = good.receiver.video.packets;
  await new Promise((r) => setTimeout(r, 500));
  await bots.refresh();
  expect(good.receiver.video.packets).toBeGreaterThan(packets);
  await bad.leave();
  await good.leave();
});
