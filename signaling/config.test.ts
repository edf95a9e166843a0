import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, renderConfigDocs, SETTINGS } from './config.ts';

describe('configuration', () => {
  it('has documented defaults', () => {
    const c = loadConfig({});
    expect(c.port).toBe(8080);
    expect(c.databaseUrl).toBeUndefined();
    expect(c.dataDir).toBe('./data');
    expect(c.dvrWindowSeconds).toBe(1800);
    expect(c.iceServers).toEqual([]);
  });

  it('parses and validates values, naming the bad variable', () => {
    expect(loadConfig({ PORT: '9000', TRUST_PROXY: 'yes', ICE_SERVERS: 'stun:a:3478, stun:b' })).toMatchObject({
      port: 9000,
      trustProxy: true,
      iceServers: ['stun:a:3478', 'stun:b'],
    });
    expect(() => loadConfig({ PORT: 'eighty' })).toThrow(ConfigError);
    expect(() => loadConfig({ PORT: '70000' })).toThrow(/PORT/);
    expect(() => loadConfig({ LOG_LEVEL: 'loud' })).toThrow(/LOG_LEVEL/);
  });

  it('docs/configuration.md is the generated reference (run `npm run docs:config`)', () => {
    const docs = readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8');
    expect(docs).toBe(renderConfigDocs());
    for (const s of Object.values(SETTINGS)) expect(docs).toContain(`\`${s.env}\``);
  });
});
