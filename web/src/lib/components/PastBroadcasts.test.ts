import { fireEvent, render, screen } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import PastBroadcasts from './PastBroadcasts.svelte';

const rec = (id: string, over: Partial<{ title: string; endedAt: string | null; durationMs: number; posterUrl: string | null }> = {}) => ({
  id,
  streamId: '7d1f0d3e-1111-4222-8333-444455556666',
  title: `Show ${id}`,
  startedAt: '2026-11-30T18:00:00.000Z',
  endedAt: '2026-11-30T19:02:03.000Z',
  durationMs: 3_723_000,
  posterUrl: `/api/recordings/${id}/poster`,
  playbackUrl: `/api/recordings/${id}/playback`,
  downloadUrl: `/api/recordings/${id}/download`,
  ...over,
});

describe('PastBroadcasts', () => {
  it('says when there are none', () => {
    render(PastBroadcasts, { recordings: [] });
    expect(screen.getByRole('heading', { name: 'Past broadcasts' })).toBeTruthy();
    expect(screen.getByText(/No past broadcasts yet/)).toBeTruthy();
    expect(screen.queryByRole('list')).toBeNull();
  });

  it('lists each with its poster, title, date and duration, linking to its video page; the one being recorded is marked', () => {
    const { container } = render(PastBroadcasts, {
      recordings: [rec('b', { endedAt: null, durationMs: 65_000, posterUrl: null }), rec('a')],
    });
    const links = screen.getAllByRole('link');
    expect(links.map((l) => l.getAttribute('href'))).toEqual(['/videos/b', '/videos/a']);
    expect(links[1]!.textContent).toContain('Show a');
    expect(links[1]!.textContent).toContain('1:02:03');
    expect(links[1]!.querySelector('time')?.getAttribute('datetime')).toBe('2026-11-30T18:00:00.000Z');
    expect(links[0]!.textContent).toMatch(/LIVE/);
    expect(links[0]!.textContent).toMatch(/recording now/);
    expect(container.querySelectorAll('img').length).toBe(1);
    expect(container.querySelector('img')?.getAttribute('src')).toBe('/api/recordings/a/poster');
    // viewers get no Delete
    expect(screen.queryByRole('button')).toBeNull();
  });

  it('lets the owner delete one, after confirming', async () => {
    const onDelete = vi.fn(async () => {});
    render(PastBroadcasts, { recordings: [rec('a'), rec('b')], canDelete: true, onDelete });
    const buttons = screen.getAllByRole('button', { name: /^Delete Show/ });
    expect(buttons.length).toBe(2);
    await fireEvent.click(buttons[1]!);
    expect(onDelete).not.toHaveBeenCalled();
    expect(screen.getByRole('alertdialog', { name: 'Delete Show b?' })).toBeTruthy();
    await vi.waitFor(() => expect(document.activeElement?.textContent).toBe('Cancel')); // keyboard focus follows
    await fireEvent.click(screen.getByRole('button', { name: 'Cancel' }));
    expect(onDelete).not.toHaveBeenCalled();
    await vi.waitFor(() => expect(document.activeElement).toBe(screen.getAllByRole('button', { name: /^Delete Show/ })[1]));
    await fireEvent.click(screen.getAllByRole('button', { name: /^Delete Show/ })[1]!);
    await fireEvent.click(screen.getByRole('button', { name: 'Yes, delete' }));
    expect(onDelete).toHaveBeenCalledWith('b');
  });

  it('says when a delete fails', async () => {
    render(PastBroadcasts, {
      recordings: [rec('a')],
      canDelete: true,
      onDelete: async () => {
        throw new Error('Only the channel owner can delete its recordings');
      },
    });
    await fireEvent.click(screen.getByRole('button', { name: /^Delete Show a/ }));
    await fireEvent.click(screen.getByRole('button', { name: 'Yes, delete' }));
    expect((await screen.findByRole('alert')).textContent).toBe('Not deleted: Only the channel owner can delete its recordings');
  });
});
