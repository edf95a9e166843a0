/**
 * Click to picture: how long a viewer who opens a channel page waits for the first picture (navigation start
 * → the first frame of the stream presented, read off the picture; see testkit `clickToPicture`), over N fresh
 * Chromium contexts. The baseline, in the same run against the same server and stream, is a bare page that
 * does only the WebRTC part of watching with the same protocol (`c2p/bare-player.ts`: socket, device, one
 * `rtc.watch`, one SDP exchange); the two are visited in turn so machine load falls on both alike.
 */
import {
  CLICK_TO_PICTURE_CHROMIUM_ARGS,
  launchChromiumBrowser,
  ObsPublisher,
  summarizePictures,
  waitLive,
  type PictureSummary,
} from '@whipcast/testkit';
import { C2pSite, visitInTurn } from './c2p-pages.ts';
import { prepareChannel, startServer, type BenchServer } from './server.ts';

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

export async function runC2pBench(o: C2pBenchOptions): Promise<C2pResult> {
  o.progress('c2p: building the bare page');
  const site = await C2pSite.build();
  const server = await startServer({ WEB_DIR: site.dir });
  let pub: ObsPublisher | null = null;
  const browser = await launchChromiumBrowser({ args: CLICK_TO_PICTURE_CHROMIUM_ARGS });
  try {
    o.onServer?.(server);
    const ch = await prepareChannel(server.url);
    const video = { ...o.video, seconds: 60 };
    pub = await ObsPublisher.publish({ url: `${server.url}/whip`, token: ch.key, numbered: true, video });
    await pub.connected();
    await waitLive(server.url, ch.streamId);
    // a GOP in the cache, as for any viewer who arrives after the stream started
    await new Promise((r) => setTimeout(r, o.video.keyframeInterval * 1000 + 500));
    const samples = await visitInTurn(browser, site.pages(server.url, ch.streamId), o.samples, o.progress);
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
    await site.close();
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
