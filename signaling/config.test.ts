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
    expect(c).toMatchObject({ recordingsDir: undefined, recordingsRetentionDays: 7, recordingsQuotaMb: undefined });
    expect(loadConfig({ RECORDINGS_QUOTA_MB: '500', RECORDINGS_RETENTION_DAYS: '0' })).toMatchObject({
      recordingsQuotaMb: 500,
      recordingsRetentionDays: 0,
    });
    expect(() => loadConfig({ RECORDINGS_QUOTA_MB: '0' })).toThrow(/RECORDINGS_QUOTA_MB/);
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

  it('cluster mode needs the shared database and secret', () => {
    expect(() => loadConfig({ NODE_URL: 'http://10.0.0.5:8080' })).toThrow(/DATABASE_URL/);
    expect(() => loadConfig({ NODE_URL: 'http://10.0.0.5:8080', DATABASE_URL: 'postgres://x@db/w' })).toThrow(/WHIPCAST_SECRET/);
    const c = loadConfig({ NODE_URL: 'http://10.0.0.5:8080', DATABASE_URL: 'postgres://x@db/w', WHIPCAST_SECRET: 'x'.repeat(32) });
    expect(c).toMatchObject({ nodeUrl: 'http://10.0.0.5:8080', nodeHeartbeatSeconds: 2, nodeExpirySeconds: 10 });
  });

  it('docker-compose.yml sets only settings whipcast knows', () => {
    const compose = readFileSync(new URL('../docker-compose.yml', import.meta.url), 'utf8');
    const known = new Set(Object.values(SETTINGS).map((s) => s.env));
    const used = [...compose.matchAll(/^\s+([A-Z][A-Z0-9_]+):/gm)].map((m) => m[1]!).filter((k) => !k.startsWith('POSTGRES_'));
    expect(used.length).toBeGreaterThan(10);
    expect(used.filter((k) => !known.has(k))).toEqual([]);
  });

  it('docs/configuration.md is the generated reference (run `npm run docs:config`)', () => {
    const docs = readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8');
    expect(docs).toBe(renderConfigDocs());
    for (const s of Object.values(SETTINGS)) expect(docs).toContain(`\`${s.env}\``);
  });
});
