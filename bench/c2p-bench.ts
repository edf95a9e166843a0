/**
 * Click to picture: how long a viewer who opens a channel page waits for the first picture (navigation start
 * → the first frame of the stream presented, read off the picture; see testkit `clickToPicture`), over N fresh
 * Chromium contexts. The baseline, in the same run against the same server and stream, is a bare page that
 * does only the WebRTC part of watching with the same protocol (`c2p/bare-player.ts`: socket, device, one
 * `rtc.watch`, one SDP exchange); the two are visited in turn so machine load falls on both alike.
 */
import { cp, mkdtemp, rm, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  clickToPicture,
  launchChromiumBrowser,
  ObsPublisher,
  summarizePictures,
  waitLive,
  type PictureSample,
  type PictureSummary,
} from '@whipcast/testkit';
import { prepareChannel, startServer, type BenchServer } from './server.ts';

const WEB_BUILD = fileURLToPath(new URL('../web/build', import.meta.url));
const BARE_SOURCE = fileURLToPath(new URL('./c2p', import.meta.url));
/** Where the bare page is served from, beside the app. */
const BARE_BASE = '/bench-bare/';

export interface C2pBenchOptions {
  /** Visits of each page (after one warm-up visit each, not counted). */
  samples: number;
  video: { kbps: number; width: number; height: number; keyframeInterval: number };
  /** Called with the server's pid once it runs (the CLI pins it). */
  onServer?(server: BenchServer): void;
  progress(text: string): void;
}

export interface C2pResult {
  samples: number;
  /** whipcast's channel page (`/live/:id`). */
  whipcast: PictureSummary;
  /** The bare WebRTC page. */
  baseline: PictureSummary;
  /** whipcast p50 / baseline p50. */
  ratioP50: number;
  /** Every sample's picture time, in visit order. */
  all: { whipcast: number[]; baseline: number[] };
}

/** The built web app plus the bare page (built here with the web app's Vite) in one directory for WEB_DIR. */
async function site(): Promise<string> {
  try {
    await stat(join(WEB_BUILD, '200.html'));
  } catch {
    throw new Error('the web app is not built: run `npm run build -w web` first');
  }
  const dir = await mkdtemp(join(tmpdir(), 'whipcast-c2p-'));
  await cp(WEB_BUILD, dir, { recursive: true });
  const vitePath = createRequire(new URL('../web/package.json', import.meta.url)).resolve('vite');
  // the web app's own Vite (a dev dependency of web/, not of the bench)
  const vite: { build(config: object): Promise<unknown> } = await import(vitePath);
  await vite.build({
    configFile: false,
    root: BARE_SOURCE,
    base: BARE_BASE,
    logLevel: 'warn',
    build: { outDir: join(dir, BARE_BASE), emptyOutDir: false, rollupOptions: { input: join(BARE_SOURCE, 'bare-player.html') } },
  });
  return dir;
}

export async function runC2pBench(o: C2pBenchOptions): Promise<C2pResult> {
  o.progress('c2p: building the bare page');
  const dir = await site();
  const server = await startServer({ WEB_DIR: dir });
  let pub: ObsPublisher | null = null;
  const browser = await launchChromiumBrowser();
  try {
    o.onServer?.(server);
    const ch = await prepareChannel(server.url);
    const video = { ...o.video, seconds: 60 };
    pub = await ObsPublisher.publish({ url: `${server.url}/whip`, token: ch.key, numbered: true, video });
    await pub.connected();
    await waitLive(server.url, ch.streamId);
    // a GOP in the cache, as for any viewer who arrives after the stream started
    await new Promise((r) => setTimeout(r, o.video.keyframeInterval * 1000 + 500));
    const pages = {
      whipcast: `${server.url}/live/${ch.streamId}`,
      baseline: `${server.url}${BARE_BASE}bare-player.html?channel=${ch.streamId}`,
    };
    // the browser's first contexts start its network and renderer services: not counted
    await clickToPicture(browser, pages.whipcast);
    await clickToPicture(browser, pages.baseline);
    const samples: Record<keyof typeof pages, PictureSample[]> = { whipcast: [], baseline: [] };
    for (let i = 0; i < o.samples; i++) {
      // in turn, each first every other time
      for (const k of i % 2 ? (['baseline', 'whipcast'] as const) : (['whipcast', 'baseline'] as const)) {
        o.progress(`c2p: visit ${i + 1}/${o.samples} of the ${k} page`);
        samples[k].push(await clickToPicture(browser, pages[k]));
      }
    }
    const whipcast = summarizePictures(samples.whipcast);
    const baseline = summarizePictures(samples.baseline);
    return {
      samples: o.samples,
      whipcast,
      baseline,
      ratioP50: whipcast.p50 / baseline.p50,
      all: { whipcast: samples.whipcast.map((s) => s.pictureMs), baseline: samples.baseline.map((s) => s.pictureMs) },
    };
  } finally {
    pub?.drop();
    await browser.close();
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

const ms = (n: number) => (Number.isFinite(n) ? String(Math.round(n)) : '–');

/** The report's lines: p50/p95/max of each page, the ratio, and the median time of each step on the way. */
export function c2pTable(r: C2pResult | null | undefined): string[] {
  if (!r) return [];
  const rows = [
    ['click to picture', 'visits', 'p50 ms', 'p95 ms', 'max ms'],
    ...(['whipcast', 'baseline'] as const).map((k) => [
      k === 'whipcast' ? 'whipcast channel page' : 'bare WebRTC page (baseline)',
      String(r[k].samples),
      ms(r[k].p50),
      ms(r[k].p95),
      ms(r[k].max),
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const steps = r.whipcast.steps.map((s) => {
    const base = r.baseline.steps.find((b) => b.step === s.step);
    return `  ${s.step.padEnd(40)} ${ms(s.p50Ms).padStart(6)}${base ? ` ${ms(base.p50Ms).padStart(6)}` : ''}`;
  });
  return [
    '',
    ...rows.map((row) => row.map((c, i) => c.padStart(widths[i]!)).join('  ')),
    `click to picture p50 ×${(Math.round(r.ratioP50 * 100) / 100).toFixed(2)} of the bare page (navigation start → first numbered frame presented, fresh contexts, visited in turn)`,
    '  median ms from navigation start (whipcast, baseline):',
    ...steps,
  ];
}
