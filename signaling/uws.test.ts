import { describe, expect, it } from 'vitest';
import { normaliseAddress } from './uws.ts';

describe('uws adapter', () => {
  it('normalises IPv4-mapped addresses', () => {
    expect(normaliseAddress('0000:0000:0000:0000:0000:ffff:7f00:0001')).toBe('127.0.0.1');
    expect(normaliseAddress('::ffff:c0a8:0102')).toBe('192.168.1.2');
    expect(normaliseAddress('::1')).toBe('::1');
  });
});
