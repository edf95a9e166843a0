/**
 * Headless browsers from Debian's packages (never a downloaded browser), each
 * launch with a fresh profile directory removed on close: Chromium (`chromium`)
 * driven by playwright-core, Firefox ESR (`firefox-esr`) driven by puppeteer-core
 * over WebDriver BiDi (playwright-core cannot drive a stock Firefox).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser as PlaywrightBrowser, type BrowserContext } from 'playwright-core';
import puppeteer, { type Browser as PuppeteerBrowser, type Page as PuppeteerPage } from 'puppeteer-core';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--autoplay-policy=no-user-gesture-required',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
];

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

export interface ChromiumOptions {
  /** Browser binary (e.g. `NetworkNamespace.wrapExecutable(CHROMIUM_PATH)` to run it in a namespace). */
  executablePath?: string;
  /** Extra command-line flags. */
  args?: string[];
}

export async function launchChromium(opts: ChromiumOptions = {}): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH))
    throw new Error(`Chromium not found at ${CHROMIUM_PATH}: the test command installs Debian's chromium package`);
  const dir = await mkdtemp(join(tmpdir(), 'whipcast-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(dir, {
      executablePath: opts.executablePath ?? CHROMIUM_PATH,
      headless: true,
      args: [...CHROMIUM_ARGS, ...(opts.args ?? []), ...(process.env.CHROMIUM_EXTRA_ARGS?.split(' ').filter(Boolean) ?? [])],
    });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    context,
    async close() {
      await context.close().catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Headless Chromium without a persistent profile, for tests that want a fresh context per visit
 * (`browser.newContext()`: no cache, cookies or storage shared between them).
 */
export async function launchChromiumBrowser(opts: ChromiumOptions = {}): Promise<PlaywrightBrowser> {
  if (!existsSync(CHROMIUM_PATH))
    throw new Error(`Chromium not found at ${CHROMIUM_PATH}: the test command installs Debian's chromium package`);
  return chromium.launch({
    executablePath: opts.executablePath ?? CHROMIUM_PATH,
    headless: true,
    args: [...CHROMIUM_ARGS, ...(opts.args ?? []), ...(process.env.CHROMIUM_EXTRA_ARGS?.split(' ').filter(Boolean) ?? [])],
  });
}

export const FIREFOX_PATH = process.env.FIREFOX_PATH ?? '/usr/bin/firefox-esr';

/**
 * Preferences for a test Firefox: fake camera and microphone without a
 * permission prompt, autoplay allowed, ICE over loopback with plain host
 * addresses (no mDNS names), nothing phoning home.
 *
 * Firefox gets H.264 for WebRTC only from the OpenH264 plugin, which it
 * downloads at run time; there is no internet here, so this Firefox offers and
 * decodes VP8/VP9/AV1 only (real users normally have the plugin). Test Firefox
 * viewers on VP8 channels.
 */
export const FIREFOX_PREFS: Record<string, unknown> = {
  'media.navigator.permission.disabled': true,
  'media.navigator.streams.fake': true,
  'media.autoplay.default': 0,
  'media.autoplay.blocking_policy': 0,
  'media.peerconnection.ice.loopback': true,
  'media.peerconnection.ice.obfuscate_host_addresses': false,
  'media.gmp-manager.updateEnabled': false,
  'media.gmp-gmpopenh264.enabled': false,
  'app.update.enabled': false,
  'browser.shell.checkDefaultBrowser': false,
  'datareporting.policy.dataSubmissionEnabled': false,
  'toolkit.telemetry.enabled': false,
};

export interface FirefoxBrowser {
  browser: PuppeteerBrowser;
  /** The fresh profile directory (removed by `close()`). */
  profileDir: string;
  newPage(): Promise<PuppeteerPage>;
  close(): Promise<void>;
}

/** Launches headless Firefox ESR (WebDriver BiDi) with a fresh profile and `FIREFOX_PREFS`. */
export async function launchFirefox(opts: { prefs?: Record<string, unknown> } = {}): Promise<FirefoxBrowser> {
  if (!existsSync(FIREFOX_PATH))
    throw new Error(`Firefox not found at ${FIREFOX_PATH}: the test command installs Debian's firefox-esr package`);
  const dir = await mkdtemp(join(tmpdir(), 'whipcast-firefox-'));
  let browser: PuppeteerBrowser;
  try {
    browser = await puppeteer.launch({
      browser: 'firefox',
      executablePath: FIREFOX_PATH,
      headless: true,
      userDataDir: dir,
      extraPrefsFirefox: { ...FIREFOX_PREFS, ...opts.prefs },
    });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  let closed: Promise<void> | null = null;
  return {
    browser,
    profileDir: dir,
    newPage: () => browser.newPage(),
    close() {
      closed ??= (async () => {
        await browser.close().catch(() => {});
        await rm(dir, { recursive: true, force: true });
      })();
      return closed;
    },
  };
}
