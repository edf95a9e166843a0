import { fireEvent, render, screen } from '@testing-library/svelte';
import { afterEach, describe, expect, it, vi } from 'vitest';
import ChannelThumbnail from './ChannelThumbnail.svelte';

const id = '7d1f0d3e-1111-4222-8333-444455556666';

describe('ChannelThumbnail', () => {
  afterEach(() => vi.useRealTimers());

  it('shows the channel thumbnail from the fixed API path', () => {
    render(ChannelThumbnail, { channelId: id });
    const img = screen.getByTestId('channel-thumbnail') as HTMLImageElement;
    expect(img.getAttribute('src')).toMatch(new RegExp(`^/api/live/streams/${id}/thumbnail\\?v=0$`));
    expect(img.getAttribute('alt')).toBe('');
  });

  it('removes the picture when there is none (404), leaving the card', async () => {
    render(ChannelThumbnail, { channelId: id });
    await fireEvent.error(screen.getByTestId('channel-thumbnail'));
    expect(screen.queryByTestId('channel-thumbnail')).toBeNull();
  });

  it('fetches a fresh picture every refresh interval, and tries again after a 404', async () => {
    vi.useFakeTimers();
    render(ChannelThumbnail, { channelId: id, refreshMs: 30_000 });
    await fireEvent.error(screen.getByTestId('channel-thumbnail'));
    expect(screen.queryByTestId('channel-thumbnail')).toBeNull();
    await vi.advanceTimersByTimeAsync(30_000);
    expect(screen.getByTestId('channel-thumbnail').getAttribute('src')).toMatch(/\?v=1$/);
    await vi.advanceTimersByTimeAsync(30_000);
    expect(screen.getByTestId('channel-thumbnail').getAttribute('src')).toMatch(/\?v=2$/);
  });
});
