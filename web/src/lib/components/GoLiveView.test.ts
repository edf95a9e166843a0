import { fireEvent, render, screen } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import GoLiveView from './GoLiveView.svelte';

const stream = {
  id: '7d1f0d3e-1111-4222-8333-444455556666',
  title: 'My show',
  description: 'Hello',
  status: 'offline' as const,
  viewerCount: 0,
  startedAt: null,
  owner: { id: 'u1', username: 'alice' },
  saveRecordings: true,
};
const key = { streamKey: 'wck_secretsecretsecret', whipUrl: 'https://live.example.com/whip' };

describe('GoLiveView', () => {
  it('shows a loading state', () => {
    render(GoLiveView, { stream: null, streamKey: null, loading: true });
    expect(screen.getByRole('status').textContent).toMatch(/Loading your channel/);
  });

  it('shows an error state', () => {
    render(GoLiveView, { stream: null, streamKey: null, error: 'The server is unreachable' });
    expect(screen.getByRole('alert').textContent).toBe('The server is unreachable');
  });

  it('hides the key by default, reveals it, and shows the WHIP URL and OBS steps', async () => {
    render(GoLiveView, { stream, streamKey: key });
    expect(screen.getByTestId('live-status').textContent).toBe('Offline');
    expect(screen.getByTestId('whip-url').textContent).toBe(key.whipUrl);
    expect(screen.getByTestId('stream-key').textContent).not.toContain('wck_');
    await fireEvent.click(screen.getByRole('button', { name: 'Reveal' }));
    expect(screen.getByTestId('stream-key').textContent).toBe(key.streamKey);
    expect(screen.getByText(/Keyframe interval 1 s/)).toBeTruthy();
    expect((screen.getByLabelText('Title') as HTMLInputElement).value).toBe('My show');
  });

  it('asks before rotating the key', async () => {
    const onRotate = vi.fn(async () => {});
    render(GoLiveView, { stream: { ...stream, status: 'live' }, streamKey: key, onRotate });
    expect(screen.getByTestId('live-status').textContent).toBe('LIVE');
    await fireEvent.click(screen.getByRole('button', { name: 'Rotate…' }));
    expect(onRotate).not.toHaveBeenCalled();
    await fireEvent.click(screen.getByRole('button', { name: 'Yes, rotate' }));
    expect(onRotate).toHaveBeenCalledOnce();
  });
});

describe('GoLiveView feedback', () => {
  it('says when the details are saved, and when they are not', async () => {
    let fail = false;
    const onSave = vi.fn(async () => {
      if (fail) throw new Error('Title too long');
    });
    render(GoLiveView, { stream, streamKey: key, onSave });
    await fireEvent.click(screen.getByRole('button', { name: 'Save' }));
    expect(await screen.findByText('Saved. Viewers see the new title and description.')).toBeTruthy();
    fail = true;
    await fireEvent.click(screen.getByRole('button', { name: 'Save' }));
    expect(await screen.findByText('Not saved: Title too long')).toBeTruthy();
  });

  it('"Save past broadcasts" shows the channel setting and is saved with the details', async () => {
    const onSave = vi.fn(async (_fields: { title: string; description: string; saveRecordings: boolean }) => {});
    render(GoLiveView, { stream: { ...stream, saveRecordings: false }, streamKey: key, onSave });
    const box = screen.getByRole('checkbox', { name: 'Save past broadcasts' }) as HTMLInputElement;
    expect(box.checked).toBe(false);
    expect(box.getAttribute('aria-describedby')).toBeTruthy();
    await fireEvent.click(box);
    expect(box.checked).toBe(true);
    await fireEvent.click(screen.getByRole('button', { name: 'Save' }));
    expect(onSave).toHaveBeenCalledWith({ title: 'My show', description: 'Hello', saveRecordings: true });
    await fireEvent.click(box);
    await fireEvent.click(screen.getByRole('button', { name: 'Save' }));
    expect(onSave).toHaveBeenLastCalledWith({ title: 'My show', description: 'Hello', saveRecordings: false });
  });

  it('without a clipboard (plain http), Copy reveals and selects the key instead of claiming a copy', async () => {
    render(GoLiveView, { stream, streamKey: key });
    await fireEvent.click(screen.getByRole('button', { name: 'Copy the bearer token (stream key)' }));
    expect(await screen.findByText(/^Selected: press Ctrl\+C/)).toBeTruthy();
    expect(screen.queryByText(/Copied/)).toBeNull();
    expect(screen.getByTestId('stream-key').textContent).toBe(key.streamKey);
    expect(getSelection()?.toString()).toBe(key.streamKey);
  });
});
