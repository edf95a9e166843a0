// @ts-check
/**
 * Bundles the server (entry signaling/main.ts, with the workspace packages @whipcast/db and
 * @whipcast/sfu) into dist/server.js with esbuild: ESM for Node 20, npm packages left external
 * (resolved from node_modules at run time), a source map beside it. `npm start`, scripts/start.sh
 * and the Docker image run `node dist/server.js`: no TypeScript transform at run time (tsx's esbuild
 * service and transform cache cost 50+ MB of RSS at a first start).
 *
 * Files the server reads relative to its own module (`new URL('./x', import.meta.url)`) are copied
 * beside the bundle: db/migrations → dist/migrations, sfu/worker-build/*.patch → dist/worker-build.
 * (signaling/version.ts reads `../package.json`: from dist/ that is the same root package.json.)
 *
 * Skips the build (≈ 0.1 s) when the inputs' hash (sources, migrations, patches, package.json
 * files, this script) matches dist/.build-hash; `--force` builds anyway (≈ 0.5 s; e.g. after an
 * esbuild upgrade). esbuild is imported only to build, so a pruned install (`npm prune --omit=dev`:
 * esbuild is a devDependency) runs an up-to-date dist/ without it.
 * Each file is written to a temporary name and renamed: concurrent builds (test files in parallel)
 * never let a reader see half a file.
 *
 *   node scripts/build-server.mjs [--force]
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** Where the bundle goes. */
export const DIST = join(ROOT, 'dist');
/** The bundled server: `node --max-semi-space-size=1 dist/server.js`. */
export const SERVER_JS = join(DIST, 'server.js');
/**
 * Node flags of the start command (`npm start`, scripts/start.sh, the Docker image's CMD, the test and bench
 * processes; db/footprint.test.ts checks they agree): V8's young generation capped at 1 MB per semi-space.
 * Under packet and socket traffic it otherwise grows to 16 MB each (32 MB touched, ≈ 1.6 MB live): ≈ 45 MB of
 * RSS, for fewer but longer scavenges (docs/benchmarks.md, Footprint).
 */
export const SERVER_NODE_FLAGS = ['--max-semi-space-size=1'];
const HASH_FILE = join(DIST, '.build-hash');
const SOURCE_DIRS = ['db', 'sfu', 'signaling'];
/** Files read at run time relative to the module that reads them: copied into dist/<to>. */
const ASSETS = [
  { from: 'db/migrations', to: 'migrations', match: /\.sql$/ },
  { from: 'sfu/worker-build', to: 'worker-build', match: /\.patch$/ },
];

/** @param {string} dir @returns {Promise<string[]>} files under dir (repo-relative), sorted */
async function walk(dir) {
  const out = [];
  for (const e of await readdir(join(ROOT, dir), { withFileTypes: true })) {
    const rel = join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== 'node_modules' && e.name !== 'fixtures') out.push(...(await walk(rel)));
    } else if (/\.(ts|sql|patch|json)$/.test(e.name) && !e.name.endsWith('.test.ts')) out.push(rel);
  }
  return out.sort();
}

/** @returns {Promise<string>} hash of everything the build reads */
async function inputsHash() {
  const files = ['package.json', relative(ROOT, fileURLToPath(import.meta.url))];
  for (const d of SOURCE_DIRS) files.push(...(await walk(d)));
  const h = createHash('sha256');
  for (const f of files)
    h.update(`${f}\0`)
      .update(await readFile(join(ROOT, f)))
      .update('\0');
  return h.digest('hex').slice(0, 16);
}

/** @param {string} path @param {string | Uint8Array} data */
async function writeAtomic(path, data) {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

/**
 * Builds dist/server.js unless it is up to date.
 * @param {{ force?: boolean, quiet?: boolean }} [opts]
 * @returns {Promise<{ built: boolean, ms: number, hash: string }>}
 */
export async function buildServer(opts = {}) {
  const started = performance.now();
  const hash = await inputsHash();
  const current = await readFile(HASH_FILE, 'utf8').catch(() => '');
  if (!opts.force && current.trim() === hash) return { built: false, ms: performance.now() - started, hash };

  const esbuild = await import('esbuild').catch((/** @type {Error} */ err) => {
    throw new Error(`dist/server.js is missing or out of date and esbuild is not installed (npm ci installs it): ${err.message}`);
  });
  // esbuild's service process would otherwise outlive the build (in a test worker, for the file's life)
  const result = await esbuild
    .build({
      absWorkingDir: ROOT,
      entryPoints: ['signaling/main.ts'],
      outfile: SERVER_JS,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      sourcemap: true,
      write: false,
      logLevel: 'warning',
      plugins: [
        {
          // `packages: 'external'`, except the workspace packages: they are TypeScript sources (node
          // cannot load them), so they go into the bundle
          name: 'external-npm-packages',
          setup(build) {
            build.onResolve({ filter: /^[^./]/ }, (args) =>
              args.path.startsWith('@whipcast/') ? undefined : { path: args.path, external: true },
            );
          },
        },
      ],
    })
    .finally(() => esbuild.stop());
  for (const f of result.outputFiles) await writeAtomic(f.path, f.contents);
  for (const a of ASSETS) {
    const names = (await readdir(join(ROOT, a.from))).filter((n) => a.match.test(n));
    for (const n of names) await writeAtomic(join(DIST, a.to, n), await readFile(join(ROOT, a.from, n)));
    for (const n of await readdir(join(DIST, a.to))) {
      if (a.match.test(n) && !names.includes(n)) await rm(join(DIST, a.to, n), { force: true });
    }
  }
  await writeAtomic(HASH_FILE, `${hash}\n`);
  const ms = performance.now() - started;
  if (!opts.quiet) console.error(`built ${relative(ROOT, SERVER_JS)} in ${Math.round(ms)} ms`);
  return { built: true, ms, hash };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await buildServer({ force: process.argv.includes('--force') });
}
