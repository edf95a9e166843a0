import { describe, expect, it } from 'vitest';
import { loginHref, safeReturnPath } from './return-path.ts';

describe('sign-in return path', () => {
  it('keeps paths on this site', () => {
    expect(safeReturnPath('/live/abc?x=1')).toBe('/live/abc?x=1');
    expect(loginHref('/live/abc')).toBe('/login?next=%2Flive%2Fabc');
    expect(loginHref('/')).toBe('/login');
  });

  it('refuses other sites and the sign-in page itself', () => {
    for (const bad of [
      'https://evil.example/',
      '//evil.example/x',
      '/\\evil.example',
      'javascript:alert(1)',
      '/login',
      '/login?next=/x',
      '',
      null,
    ])
      expect(safeReturnPath(bad)).toBeNull();
  });
});
