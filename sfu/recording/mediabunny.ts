/**
 * mediabunny, loaded on first use (its single-file Node bundle): a server that records, clips or exports
 * nothing never loads it, which keeps it out of the idle footprint and the start-up.
 */
import { createRequire } from 'node:module';
import type * as Mediabunny from 'mediabunny';

const require = createRequire(import.meta.url);
let loaded: typeof Mediabunny | null = null;

/** The mediabunny module (every caller gets the same copy: its `instanceof` checks hold across modules). */
export function mediabunny(): typeof Mediabunny {
  return (loaded ??= require('mediabunny') as typeof Mediabunny);
}
