import { describe, expect, it } from 'vitest';
import { isImpaired, parseImpairment, parseMixed } from './impair.ts';

describe('impairment flags', () => {
  it('turns --impair into the link each direction gets', () => {
    const i = parseImpairment('loss=5,delay=40,jitter=10,kbps=1000,queue=200');
    expect(i.toPeer).toEqual({ loss: 0.05, delayMs: 40, jitterMs: 10, inOrder: true, kbps: 1000, queueBytes: 25_000 });
    expect(i.toServer).toEqual({ loss: 0.05, delayMs: 40, jitterMs: 10, inOrder: true }); // no cap upstream
    // bursts keep the average loss: pGB / (pGB + pBG) = 5 %
    const b = parseImpairment('loss=5,burst=4').toPeer.burst!;
    expect(b.pBadToGood).toBe(0.25);
    expect(b.pGoodToBad / (b.pGoodToBad + b.pBadToGood)).toBeCloseTo(0.05, 10);
    // the link bad from the first packet, or only once the bot has connected
    expect(i.afterSeconds).toBeUndefined();
    expect(parseImpairment('loss=10,after=0')).toMatchObject({ afterSeconds: 0, toPeer: { loss: 0.1 } });
  });

  it('refuses what it cannot honour', () => {
    expect(() => parseImpairment('los=5')).toThrow(/not one of/);
    expect(() => parseImpairment('loss=100')).toThrow(/below 100/);
    expect(() => parseImpairment('delay=-1')).toThrow(/not one of/);
    expect(() => parseImpairment('')).toThrow(/impairs nothing/);
    expect(() => parseImpairment('after=2')).toThrow(/impairs nothing/);
    expect(() => parseMixed('kbps=1000')).toThrow(/<num>\/<den>/);
    expect(() => parseMixed('4/3:kbps=1000')).toThrow(/<num>\/<den>/);
  });

  it('spreads a share evenly over the bots in join order', () => {
    const third = parseMixed('1/3:kbps=1000');
    const picked = Array.from({ length: 9 }, (_, i) => isImpaired(third, i));
    expect(picked.filter(Boolean)).toHaveLength(3);
    expect(picked.slice(0, 3).filter(Boolean)).toHaveLength(1);
  });
});
