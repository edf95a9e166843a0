/**
 * The two pages click to picture compares, shared by `npm run bench -- --mode c2p` and the CI test
 * (`web/e2e/click-to-picture.test.ts`): whipcast's channel page and a bare page that does only the WebRTC
 * part of watching with the same protocol (`c2p/bare-player.ts`), served together by one server, and the
 * visits that alternate between them so the machine's load falls on both alike.
 */
import { cp, mkdtemp, rm, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { clickToPicture, type launchChromiumBrowser, type PictureSample } from '@whipcast/testkit';

type Browser = Awaited<ReturnType<typeof launchChromiumBrowser>>;

const WEB_BUILD = fileURLToPath(new URL('../web/build', import.meta.url));
const BARE_SOURCE = fileURLToPath(new URL('./c2p', import.meta.url));
/** Where the bare page is served from, beside the app. */
const BARE_BASE = '/bench-bare/';

/** The pages compared: whipcast's channel page and the bare WebRTC page (the baseline). */
export interface C2pPages {
  whipcast: string;
  baseline: string;
}

/** The built web app plus the bare page (built with the web app's own Vite) in one directory, to serve as WEB_DIR. */
export class C2pSite {
  private constructor(
    /** The directory to serve (`WEB_DIR`). */
    readonly dir: string,
  ) {}

  static async build(): Promise<C2pSite> {
    try {
      await stat(join(WEB_BUILD, '200.html'));
    } catch {
      throw new Error('the web app is not built: run `npm run build -w web` first');
    }
    const dir = await mkdtemp(join(tmpdir(), 'whipcast-c2p-'));
    try {
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
    } catch (e) {
      await rm(dir, { recursive: true, force: true });
      throw e;
    }
    return new C2pSite(dir);
  }

  /** The two pages of a channel on the server at `serverUrl` that serves this site. */
  pages(serverUrl: string, channelId: string): C2pPages {
    return {
      whipcast: `${serverUrl}/live/${channelId}`,
      baseline: `${serverUrl}${BARE_BASE}bare-player.html?channel=${channelId}`,
    };
  }

  async close(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * `samples` visits of each page, each in a fresh context, in turn (each page first every other time), after
 * one warm-up visit of each (not counted: the browser's first contexts start its network and renderer services).
 */
export async function visitInTurn(
  browser: Browser,
  pages: C2pPages,
  samples: number,
  progress: (text: string) => void = () => {},
): Promise<Record<keyof C2pPages, PictureSample[]>> {
  await clickToPicture(browser, pages.whipcast);
  await clickToPicture(browser, pages.baseline);
  const visits: Record<keyof C2pPages, PictureSample[]> = { whipcast: [], baseline: [] };
  for (let i = 0; i < samples; i++) {
    for (const k of i % 2 ? (['baseline', 'whipcast'] as const) : (['whipcast', 'baseline'] as const)) {
      progress(`c2p: visit ${i + 1}/${samples} of the ${k} page`);
      visits[k].push(await clickToPicture(browser, pages[k]));
    }
  }
  return visits;
}
