import { fireEvent, render, screen } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import DvrBar from './DvrBar.svelte';

describe('DvrBar', () => {
  it('shows LIVE at the live edge with the LIVE button disabled', () => {
    render(DvrBar, { windowMs: 60_000, behindLiveMs: 0, live: true, onSeek: vi.fn(), onLive: vi.fn() });
    expect(screen.getByTestId('dvr-position').textContent).toBe('LIVE');
    expect((screen.getByRole('button', { name: 'LIVE' }) as HTMLButtonElement).disabled).toBe(true);
  });

  it('shows the position behind live and seeks where the slider is dropped', async () => {
    const onSeek = vi.fn();
    const onLive = vi.fn();
    render(DvrBar, { windowMs: 30 * 60_000, behindLiveMs: 75_000, live: false, onSeek, onLive });
    expect(screen.getByTestId('dvr-position').textContent).toBe('-1:15');
    const slider = screen.getByLabelText('Position behind live') as HTMLInputElement;
    expect(slider.getAttribute('aria-valuetext')).toBe('-1:15 behind live');
    await fireEvent.change(slider, { target: { value: '-600000' } });
    expect(onSeek).toHaveBeenCalledWith(600_000);
    await fireEvent.change(slider, { target: { value: '0' } });
    expect(onLive).toHaveBeenCalledOnce();
    await fireEvent.click(screen.getByRole('button', { name: 'LIVE' }));
    expect(onLive).toHaveBeenCalledTimes(2);
  });
});
