/** Firefox ESR (Debian's package) under puppeteer-core over WebDriver BiDi, as tests launch it. */
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import { expect, it } from 'vitest';
import { launchFirefox } from './browser.ts';

it('launches headless with a fake camera and no permission prompt; removes its fresh profile on close', { timeout: 60_000 }, async () => {
  // getUserMedia needs a secure context: http://127.0.0.1 is one, about:blank is not.
  const http = createServer((_req, res) => res.end('<!doctype html><title>blank</title>'));
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
  const port = (http.address() as { port: number }).port;
  const ff = await launchFirefox();
  try {
    expect(existsSync(ff.profileDir)).toBe(true);
    const page = await ff.newPage();
    await page.goto(`http://127.0.0.1:${port}/`);
    const kinds = await page.evaluate(`(async () => {
      const s = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
      const kinds = s.getTracks().map((t) => t.kind).sort();
      s.getTracks().forEach((t) => t.stop());
      return kinds;
    })()`);
    expect(kinds).toEqual(['audio', 'video']);
  } finally {
    await ff.close();
    http.close();
  }
  await ff.close(); // idempotent
  expect(existsSync(ff.profileDir)).toBe(false);
});
