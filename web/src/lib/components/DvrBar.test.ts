import { fireEvent, render, screen } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import DvrBar from './DvrBar.svelte';

const handlers = () => ({ onSeek: vi.fn(), onLive: vi.fn(), onStep: vi.fn() });

describe('DvrBar', () => {
  it('says Live at the live edge', () => {
    render(DvrBar, { windowMs: 60_000, behindLiveMs: 0, live: true, ...handlers() });
    const slider = screen.getByLabelText('Position behind live') as HTMLInputElement;
    expect(slider.getAttribute('aria-valuetext')).toBe('Live');
    expect(slider.value).toBe('0');
  });

  it('shows the position behind live and seeks where the slider is dropped', async () => {
    const h = handlers();
    render(DvrBar, { windowMs: 30 * 60_000, behindLiveMs: 75_000, live: false, ...h });
    const slider = screen.getByLabelText('Position behind live') as HTMLInputElement;
    expect(slider.getAttribute('aria-valuetext')).toBe('-1:15 behind live');
    await fireEvent.change(slider, { target: { value: '-600000' } });
    expect(h.onSeek).toHaveBeenCalledWith(600_000);
    await fireEvent.change(slider, { target: { value: '0' } });
    expect(h.onLive).toHaveBeenCalledOnce();
  });

  it('moves 10 s per arrow key (not the browser step), a minute per page key, Home/End to the ends', async () => {
    const h = handlers();
    render(DvrBar, { windowMs: 120_000, behindLiveMs: 30_000, live: false, ...h });
    const slider = screen.getByLabelText('Position behind live');
    expect(await fireEvent.keyDown(slider, { key: 'ArrowLeft' })).toBe(false); // default prevented
    await fireEvent.keyDown(slider, { key: 'ArrowRight' });
    await fireEvent.keyDown(slider, { key: 'PageDown' });
    expect(h.onStep.mock.calls).toEqual([[-10_000], [10_000], [-60_000]]);
    await fireEvent.keyDown(slider, { key: 'Home' });
    expect(h.onSeek).toHaveBeenCalledWith(119_000);
    await fireEvent.keyDown(slider, { key: 'End' });
    expect(h.onLive).toHaveBeenCalledOnce();
    expect(await fireEvent.keyDown(slider, { key: 'Tab' })).toBe(true);
  });
});
