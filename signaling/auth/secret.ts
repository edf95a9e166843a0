import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';

const MIN_LENGTH = 32;

/**
 * The server secret: WHIPCAST_SECRET when set; otherwise generated once and
 * kept in `$DATA_DIR/secret`, or kept in memory only when nothing is persisted.
 */
export async function loadSecret(opts: {
  configured?: string | undefined;
  dataDir: string;
  persist: boolean;
  logger: Logger;
}): Promise<string> {
  if (opts.configured) {
    if (opts.configured.length < MIN_LENGTH) throw new Error(`WHIPCAST_SECRET must be at least ${MIN_LENGTH} characters`);
    return opts.configured;
  }
  if (!opts.persist) return randomBytes(32).toString('base64url');
  const file = join(opts.dataDir, 'secret');
  try {
    const existing = (await readFile(file, 'utf8')).trim();
    if (existing.length >= MIN_LENGTH) return existing;
  } catch {
    // first start
  }
  await mkdir(opts.dataDir, { recursive: true });
  const secret = randomBytes(32).toString('base64url');
  await writeFile(file, `${secret}\n`, { mode: 0o600, flag: 'wx' }).catch(async (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  opts.logger.warn({ file }, 'generated a server secret; set WHIPCAST_SECRET to share one across nodes');
  return (await readFile(file, 'utf8')).trim();
}
