/**
 * Issue #13: simulcast layers a viewer can feel, in the player (Chromium, socket viewer).
 * An OBS 32.1-like publisher sends three layers (rid "0" 1280x720 at 2.5 Mbit/s, "1" 640x360, "2" 320x180).
 * - A viewer whose downlink is capped at 1 Mbit/s (a UDP relay the test made) settles on a lower layer (its
 *   decoded frame size) and plays 30 s with no freeze of a second and without climbing back to a layer it was
 *   dropped from (the Auto hold-down, `LAYER_HOLD_SECONDS`: without it, 320 <-> 640 every few seconds); lifting
 *   the cap brings it back to 1280x720 within a keyframe interval and a few seconds. (With the program forced to
 *   one layer the capped viewer freezes: tried, see the commit.)
 * - The quality menu: Auto and each layer named by its resolution (sizes from the server); choosing 360p from
 *   the keyboard gives 640x360 frames (getStats) and the stats say 360p; Auto returns to 1280x720. At phone
 *   width the menu fits without sideways scrolling.
 * - "Go live from this browser" publishes three layers (Chromium's fake 1280x720 camera): the program gets three
 *   layers, each fed, with three picture sizes.
 */
import { fileURLToPath } from 'node:url';
import {
  frameNumberInPage,
  ImpairedPeer,
  impairPage,
  launchChromium,
  ObsPublisher,
  pageInboundRtp,
  raisePriority,
  recordPeerConnections,
  shownVideoRtp,
  summedVideo,
  type Browser,
  type InboundRtp,
} from '@whipcast/testkit';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SocketViewer } from '@whipcast/sfu';
import { startSfuTestServer, type SfuTestServer } from '../../signaling/testing.ts';

const WEB_DIR = fileURLToPath(new URL('../build', import.meta.url));
/** The publisher's layers (rid "0" first), and its keyframe interval. */
const TOP = { width: 1280, height: 720, kbps: 2500 };
const KEYFRAME_INTERVAL_S = 1;
const WATCH_MS = 30_000;
const PHONE = { width: 390, height: 844 };
/**
 * The Auto hold-down's first hold (`LAYER_HOLD_SECONDS`, 30 s by default): long enough to cover the capped viewer's
 * 5 s of settling, 2 s and 30 s window after a drop, so a layer it was dropped from cannot come back inside the
 * window by time alone; short enough that, should the bandwidth estimate not show the lifted cap, the hold's end
 * still brings 1280x720 back within the lift's bound.
 */
const LAYER_HOLD_S = 45;

let server: SfuTestServer;
let browser: Browser;
let restorePriority = () => {};

beforeAll(async () => {
  // what the viewer sees must not depend on the other test file CI runs beside this one: the server, the relay
  // standing in for the capped link, the mediasoup worker and Chromium get the CPU first (see testkit/priority.ts)
  restorePriority = raisePriority(-10);
  [server, browser] = await Promise.all([
    startSfuTestServer({
      env: { MEDIA_WORKERS: '1', WEB_DIR, LAYER_HOLD_SECONDS: String(LAYER_HOLD_S) },
    }),
    launchChromium(),
  ]);
}, 120_000);
afterAll(async () => {
  await browser?.close();
  await server?.close();
  restorePriority();
});

/** A live 3-layer channel and a player page for it (behind `link` when given), its peer connections' stats readable. */
async function watch(
  link?: ImpairedPeer,
  opts: { signedIn?: boolean } = {},
): Promise<{ page: Page; pub: ObsPublisher; channelId: string }> {
  const user = await server.register();
  const me = (await (await server.api('/api/live/streams/me', { headers: user.auth })).json()) as { id: string };
  const { streamKey } = (await (await server.api('/api/live/streams/me/key', { headers: user.auth })).json()) as { streamKey: string };
  const pub = await ObsPublisher.publish({
    url: `${server.url}/whip`,
    token: streamKey,
    simulcast: true,
    numbered: true,
    video: { ...TOP, keyframeInterval: KEYFRAME_INTERVAL_S, seconds: 60 },
  });
  await pub.connected();
  const page = await browser.context.newPage();
  if (link) await impairPage(page, link);
  await recordPeerConnections(page);
  // the streamer watching their own channel, signed in (the player then offers Clip)
  if (opts.signedIn) await page.addInitScript((token) => localStorage.setItem('whipcast.token', token), user.token);
  // the app's sockets, so a test can drop one (the player rebuilds on the reconnect)
  await page.addInitScript(`(() => {
    const sockets = (window.__sockets = []);
    const Native = window.WebSocket;
    window.WebSocket = class extends Native {
      constructor(...args) {
        super(...args);
        sockets.push(this);
      }
    };
  })();`);
  await page.goto(`${server.url}/live/${me.id}`);
  return { page, pub, channelId: me.id };
}

/** The video the page receives, summed over its receivers (sizes and rate: of the one decoding fastest). */
const videoIn = async (page: Page): Promise<InboundRtp> => summedVideo(await pageInboundRtp(page));

/** What the picture showed over a while: counters summed over each stretch the `<video>` showed one stream. */
interface Observed {
  decoded: number;
  freezes: number;
  frozenS: number;
  /** The longest time no new frame decoded on the stream the picture showed. */
  longestStallMs: number;
  widths: Set<number>;
  /** How many streams the picture showed in turn (the instant-start catch-up hands over to live once). */
  streams: number;
  /** The picture widths in the order they were shown (a change appends). */
  widthSequence: number[];
}

/**
 * Polls the stream behind the picture every 250 ms for `ms`. Counters are taken on the stream the picture shows
 * (a receiver the player has left behind, such as the catch-up one, would add frames nobody sees or, when it
 * goes, take its frames out of a sum over the page).
 */
async function observe(page: Page, ms: number): Promise<Observed> {
  const o: Observed = { decoded: 0, freezes: 0, frozenS: 0, longestStallMs: 0, widths: new Set(), streams: 1, widthSequence: [] };
  let last = await shownVideoRtp(page);
  let lastNewFrameAt = performance.now();
  const end = performance.now() + ms;
  while (performance.now() < end) {
    await page.waitForTimeout(250);
    const s = await shownVideoRtp(page);
    const now = performance.now();
    if (s && last && s.ssrc === last.ssrc) {
      if (s.framesDecoded > last.framesDecoded) lastNewFrameAt = now;
      o.decoded += s.framesDecoded - last.framesDecoded;
      o.freezes += s.freezeCount - last.freezeCount;
      o.frozenS += s.totalFreezesDuration - last.totalFreezesDuration;
    } else if (s) {
      o.streams++;
      lastNewFrameAt = now;
    }
    o.longestStallMs = Math.max(o.longestStallMs, now - lastNewFrameAt);
    if (s?.frameWidth) {
      o.widths.add(s.frameWidth);
      if (o.widthSequence.at(-1) !== s.frameWidth) o.widthSequence.push(s.frameWidth);
    }
    last = s ?? last;
  }
  return o;
}

describe('simulcast in the player', () => {
  it(
    'a viewer capped at 1 Mbit/s settles on a lower layer and plays 30 s without a 1 s freeze; lifting the cap brings 1280x720 back',
    { timeout: 180_000 },
    async () => {
      const link = new ImpairedPeer({ toPeer: { kbps: 1000 } });
      const { page, pub, channelId } = await watch(link);
      // the server's side: each hold-down of the viewer's Auto layer (after the estimate dropped it from a layer)
      const holds: string[] = [];
      const t0 = performance.now();
      const at = () => ((performance.now() - t0) / 1000).toFixed(1);
      const followed = new Set<SocketViewer>();
      const followHolds = () => {
        for (const v of server.sfu.channel(channelId)?.viewers() ?? []) {
          if (!(v instanceof SocketViewer) || followed.has(v)) continue;
          followed.add(v);
          v.layerHoldDown.on('hold', (ceiling, ms) => holds.push(`${at()} s: held at or below layer ${ceiling} for ${ms / 1000} s`));
          v.layerHoldDown.on('release', (recovered) => holds.push(`${at()} s: released (${recovered ? 'estimate' : 'time'})`));
        }
      };
      try {
        // settles: a layer below the top decodes at full rate, one width for 5 s (what it did meanwhile is logged:
        // width@fps, each second)
        const settling: string[] = [];
        let width = 0;
        let widthSince = performance.now();
        await expect
          .poll(
            async () => {
              followHolds();
              const s = await videoIn(page);
              if (settling.length < (performance.now() - t0) / 1000)
                settling.push(`${s.frameWidth}@${Math.round(s.framesPerSecond)}${s.freezeCount ? `/${s.freezeCount}f` : ''}`);
              if (s.frameWidth !== width) [width, widthSince] = [s.frameWidth, performance.now()];
              return s.frameWidth > 0 && s.frameWidth < TOP.width && s.framesPerSecond >= 25 && performance.now() - widthSince >= 5000;
            },
            { timeout: 40_000, interval: 500 },
          )
          .toBe(true)
          .finally(() => console.log(`capped viewer settling (width@fps/freezes, each second): ${settling.join(' ')}`));
        await page.waitForTimeout(2000);
        followHolds();
        const o = await observe(page, WATCH_MS);
        const { decoded, frozenS, freezes } = o;
        const dropped = (await link.counters()).toPeer.queueDropped;
        console.log(
          `capped viewer (1 Mbit/s): widths ${o.widthSequence.join(' -> ')}; ${decoded} frames decoded in ${WATCH_MS / 1000} s ` +
            `on ${o.streams} stream(s) shown; ` +
            `${freezes} freezes, ${frozenS.toFixed(2)} s frozen; longest stall ${Math.round(o.longestStallMs)} ms; ` +
            `${dropped} packets dropped by the cap so far; server holds: ${holds.join('; ') || 'none'}`,
        );
        expect(Math.max(...o.widths)).toBeLessThan(TOP.width);
        // no flapping: the picture never climbs back to a width it was dropped from within the window (the estimate
        // may still move it once: up as it grows, or down when a link that carried 640x360 for a while cannot)
        const droppedFrom = new Set<number>();
        const returns = o.widthSequence.filter((w, i) => {
          const before = o.widthSequence[i - 1];
          if (before !== undefined && w < before) droppedFrom.add(before);
          return before !== undefined && w > before && droppedFrom.has(w);
        });
        expect(returns, `widths ${o.widthSequence.join(' -> ')}`).toEqual([]);
        expect(decoded).toBeGreaterThanOrEqual(0.9 * 30 * (WATCH_MS / 1000));
        expect(o.longestStallMs).toBeLessThan(1000);
        expect(frozenS).toBeLessThan(1);

        // the cap goes: back to the top layer within a keyframe interval and a few seconds
        await link.setImpairment('toPeer', {});
        const liftedAt = performance.now();
        // what the server saw meanwhile, each second: its bandwidth estimate for the viewer, the layer it sends
        const lift: string[] = [];
        await expect
          .poll(
            async () => {
              const v = server.sfu.channel(channelId)?.viewers()[0];
              if (v && lift.length < (performance.now() - liftedAt) / 1000) {
                const est = (await v.transport.getStats())[0]?.availableOutgoingBitrate ?? 0;
                const layer = v.currentConsumers().find((c) => c.kind === 'video')?.currentLayers?.spatialLayer ?? '-';
                lift.push(`${Math.round(est / 1000)}k/L${layer}`);
              }
              return (await videoIn(page)).frameWidth;
            },
            { timeout: (KEYFRAME_INTERVAL_S + 14) * 1000, interval: 250 },
          )
          .toBe(TOP.width)
          .finally(() => console.log(`after the lift (estimate/layer sent, each second): ${lift.join(' ')}`));
        console.log(
          `cap lifted: 1280x720 decoding after ${((performance.now() - liftedAt) / 1000).toFixed(1)} s; server holds: ${holds.join('; ') || 'none'}`,
        );
      } finally {
        await page.close();
        await link.close();
        await pub.stop();
      }
    },
  );

  it(
    'the quality menu: 360p by hand gives 640x360 frames, Auto goes back to 1280x720; keyboard, phone width',
    { timeout: 120_000 },
    async () => {
      const { page, pub } = await watch();
      try {
        const size = async () => {
          const s = await videoIn(page);
          return `${s.frameWidth}x${s.frameHeight}`;
        };
        await expect.poll(size, { timeout: 20_000, interval: 250 }).toBe('1280x720'); // Auto on a perfect link: the top
        const menu = page.getByLabel('Quality');
        await menu.waitFor({ timeout: 15_000 });
        // the layers by resolution, best first, sizes as the server read them off each layer
        expect((await menu.locator('option').allTextContents()).slice(1)).toEqual(['720p', '360p', '180p']);
        await expect.poll(async () => (await menu.locator('option').first().textContent())?.trim(), { timeout: 5000 }).toBe('Auto (720p)');
        await page.getByRole('button', { name: 'Stats for nerds' }).click();
        await expect.poll(() => page.locator('[data-stat="Layer"]').textContent(), { timeout: 5000 }).toBe('720p');

        // from the keyboard: focus the menu, two steps down from Auto → 360p
        await menu.focus();
        await page.keyboard.press('ArrowDown');
        await page.keyboard.press('ArrowDown');
        await expect.poll(() => menu.inputValue(), { timeout: 2000 }).toBe('1');
        const chosenAt = performance.now();
        await expect.poll(size, { timeout: (KEYFRAME_INTERVAL_S + 5) * 1000, interval: 250 }).toBe('640x360');
        console.log(`360p chosen: 640x360 decoding after ${((performance.now() - chosenAt) / 1000).toFixed(1)} s`);
        await expect.poll(() => page.locator('[data-stat="Layer"]').textContent(), { timeout: 5000 }).toBe('360p');
        await page.waitForTimeout(3000);
        expect(await size()).toBe('640x360'); // it stays there: a perfect link would allow 720p

        // back to Auto: the top layer again
        await menu.selectOption('auto');
        await expect.poll(size, { timeout: (KEYFRAME_INTERVAL_S + 8) * 1000, interval: 250 }).toBe('1280x720');

        // phone width: the bar keeps the menu on screen, the page does not scroll sideways
        await page.setViewportSize(PHONE);
        await page.waitForTimeout(300);
        expect(await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)).toBeLessThanOrEqual(0);
        const box = await menu.boundingBox();
        expect(box).not.toBeNull();
        expect(box!.x).toBeGreaterThanOrEqual(0);
        expect(box!.x + box!.width).toBeLessThanOrEqual(PHONE.width);
        await page.screenshot({ path: fileURLToPath(new URL('../../artifacts/screenshots/player-quality-phone.png', import.meta.url)) });
      } finally {
        await page.close();
        await pub.stop();
      }
    },
  );

  it(
    'the quality choice holds: 360p after a DVR seek back, after returning to live, and after the socket reconnects',
    { timeout: 120_000 },
    async () => {
      const { page, pub } = await watch();
      try {
        // the size of the picture on screen: the stats of the receiver behind the <video>'s track, not of one left behind
        const shown = async () => {
          const s = await shownVideoRtp(page);
          return s && s.framesPerSecond > 0 ? `${s.frameWidth}x${s.frameHeight}` : 'none';
        };
        const behind = async () => pub.counters.frames - ((await frameNumberInPage(page, 'video').catch(() => null)) ?? -1e9);
        /** The picture stays at 640x360 for `ms` (read every 250 ms). */
        const holds360p = async (what: string, ms = 3000) => {
          const seen = new Set<string>();
          for (const end = performance.now() + ms; performance.now() < end; await page.waitForTimeout(250)) seen.add(await shown());
          expect([...seen], what).toEqual(['640x360']);
        };
        await expect.poll(shown, { timeout: 20_000, interval: 250 }).toBe('1280x720');
        const menu = page.getByLabel('Quality');
        await menu.selectOption('1'); // 360p
        await expect.poll(shown, { timeout: (KEYFRAME_INTERVAL_S + 5) * 1000, interval: 250 }).toBe('640x360');
        await expect.poll(behind, { timeout: 10_000, interval: 250 }).toBeLessThan(30); // live

        // back 10 s (once the window holds 15 s): the past plays (read off the picture), still at 360p
        await expect.poll(() => pub.counters.frames, { timeout: 20_000, interval: 250 }).toBeGreaterThan(15 * 30);
        await page.getByRole('button', { name: 'Back 10 seconds' }).click();
        await expect.poll(behind, { timeout: 10_000, interval: 250 }).toBeGreaterThan(200);
        await expect.poll(shown, { timeout: 5000, interval: 250 }).toBe('640x360');
        await holds360p('after the seek');
        expect(await behind()).toBeGreaterThan(200); // still in the past

        // back to live: the catch-up from the GOP cache, then the live program at the next keyframe (1 s) — at 360p.
        // (During the catch-up at 2x, which needs twice the bitrate, mediasoup may pick a lower layer for a moment:
        // seen 320x180 for one reading. The choice must hold on the live program.)
        await page.getByRole('button', { name: 'LIVE', exact: true }).click();
        await expect.poll(behind, { timeout: 15_000, interval: 250 }).toBeLessThan(30);
        await page.waitForTimeout(2000); // past the switch
        await holds360p('back at live');

        // the socket drops and reconnects: a new transport, and the choice is asked for again
        const sockets = await page.evaluate(`(window.__sockets || []).filter((ws) => ws.readyState === 1).length`);
        expect(sockets).toBeGreaterThan(0);
        await page.evaluate(`(window.__sockets || []).forEach((ws) => ws.close())`);
        const pcs = await page.evaluate(`window.__whipcastPcs.length`);
        await expect.poll(() => page.evaluate(`window.__whipcastPcs.length`), { timeout: 10_000 }).toBeGreaterThan(Number(pcs));
        await expect.poll(behind, { timeout: 15_000, interval: 250 }).toBeLessThan(30);
        // a new transport's bandwidth estimate starts at 600 kbit/s, below this 360p layer: 180p until it grows
        await expect.poll(shown, { timeout: 10_000, interval: 250 }).toBe('640x360');
        await holds360p('after the reconnect');
        expect(await menu.inputValue()).toBe('1');
      } finally {
        await page.close();
        await pub.stop();
      }
    },
  );

  it(
    'at 390 px the control bar (quality menu, Clip, behind live) stays one row inside the player, light and dark',
    { timeout: 90_000 },
    async () => {
      const { page, pub } = await watch(undefined, { signedIn: true });
      try {
        await page.setViewportSize(PHONE);
        await page.getByLabel('Quality').waitFor({ timeout: 20_000 });
        await expect.poll(() => pub.counters.frames, { timeout: 20_000, interval: 250 }).toBeGreaterThan(12 * 30);
        // the widest state: signed in (Clip), behind live (the LIVE button and "-0:10 behind"), a layer chosen
        await page.getByLabel('Quality').selectOption('1');
        await page.getByRole('button', { name: 'Back 10 seconds' }).click();
        await page.getByRole('button', { name: 'LIVE', exact: true }).waitFor({ timeout: 10_000 });
        await page.getByRole('button', { name: 'Clip', exact: false }).first().waitFor({ timeout: 5000 });
        for (const scheme of ['light', 'dark'] as const) {
          await page.emulateMedia({ colorScheme: scheme });
          await page.waitForTimeout(300);
          const bar = await page.evaluate(`(() => {
            const bar = document.querySelector('.player .controls');
            const r = bar.getBoundingClientRect();
            const items = [...bar.children].filter((c) => c.getBoundingClientRect().width > 0).map((c) => {
              const b = c.getBoundingClientRect();
              return { name: c.getAttribute('aria-label') || c.className || c.tagName, top: b.top, bottom: b.bottom, left: b.left, right: b.right };
            });
            return { left: r.left, right: r.right, scroll: bar.scrollWidth - bar.clientWidth, items, page: document.documentElement.scrollWidth - innerWidth };
          })()`);
          const b = bar as {
            left: number;
            right: number;
            scroll: number;
            page: number;
            items: { name: string; top: number; bottom: number; left: number; right: number }[];
          };
          const rows = new Set(b.items.map((i) => Math.round(i.top + (i.bottom - i.top) / 2)));
          const mid = (i: { top: number; bottom: number }) => (i.top + i.bottom) / 2;
          const first = mid(b.items[0]!);
          console.log(
            `control bar at 390 px (${scheme}): ${b.items.map((i) => `${i.name}@${Math.round(i.left)}-${Math.round(i.right)}/${Math.round(mid(i))}`).join(' ')}`,
          );
          expect(b.page, 'page scrolls sideways').toBeLessThanOrEqual(0);
          expect(b.scroll, 'bar overflows').toBeLessThanOrEqual(0);
          for (const i of b.items) {
            expect(Math.abs(mid(i) - first), `${i.name} on another row (${[...rows].join(', ')})`).toBeLessThan(8);
            expect(i.left, `${i.name} left of the bar`).toBeGreaterThanOrEqual(b.left - 0.5);
            expect(i.right, `${i.name} right of the bar`).toBeLessThanOrEqual(b.right + 0.5);
          }
          await page.screenshot({
            path: fileURLToPath(new URL(`../../artifacts/screenshots/player-controls-phone-${scheme}.png`, import.meta.url)),
          });
        }
      } finally {
        await page.close();
        await pub.stop();
      }
    },
  );

  it('"Go live from this browser" publishes three simulcast layers', { timeout: 90_000 }, async () => {
    const user = await server.register();
    const me = (await (await server.api('/api/live/streams/me', { headers: user.auth })).json()) as { id: string };
    const page = await browser.context.newPage();
    try {
      await page.addInitScript((token) => localStorage.setItem('whipcast.token', token), user.token);
      await page.goto(`${server.url}/live/go-live`);
      await page.getByRole('button', { name: 'Camera' }).click();
      await expect.poll(() => page.getByTestId('live-status').textContent(), { timeout: 15_000 }).toBe('LIVE');
      const channel = server.sfu.channel(me.id)!;
      const track = channel.programTrack('video')!;
      expect(track.layers).toHaveLength(3);
      // every layer fed, each with its own size (the browser may drop its top layer for a while when the CPU is
      // busy, so judge over a bounded wait)
      let sizes: string[] = [];
      await expect
        .poll(
          async () => {
            const fed = (await track.producer.getStats()).filter((st) => st.byteCount > 0).length;
            sizes = track.layers.map((l) => (l.size ? `${l.size.width}x${l.size.height}` : '?'));
            return fed === 3 && new Set(sizes).size === 3 && !sizes.includes('?');
          },
          { timeout: 30_000, interval: 500 },
        )
        .toBe(true);
      console.log(`browser publisher layers (lowest first): ${sizes.join(', ')}`);
      expect(sizes.at(-1)).toBe('1280x720');
    } finally {
      await page.close();
    }
  });
});
