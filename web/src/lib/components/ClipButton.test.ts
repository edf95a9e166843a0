import { fireEvent, render, screen } from '@testing-library/svelte';
import { afterEach, describe, expect, it, vi } from 'vitest';
import ClipButton from './ClipButton.svelte';

const channelId = '7d1f0d3e-1111-4222-8333-444455556666';
const clipId = '0b5c9a2e-2222-4333-8444-555566667777';

function mockFetch(status: number, body: unknown) {
  const fetchMock = vi.fn(async () => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } }));
  vi.stubGlobal('fetch', fetchMock);
  return fetchMock;
}

describe('ClipButton', () => {
  afterEach(() => vi.unstubAllGlobals());

  it('asks for the chosen length (default 30 s) ending where the viewer watches, and shows the link', async () => {
    const fetchMock = mockFetch(201, { id: clipId, url: `/clips/${clipId}`, downloadUrl: `/api/clips/${clipId}/download` });
    render(ClipButton, { channelId, behindLiveMs: () => 12_345.6 });
    await fireEvent.click(screen.getByRole('button', { name: 'Clip' }));
    expect((screen.getByLabelText('Length') as HTMLSelectElement).value).toBe('30');
    await fireEvent.change(screen.getByLabelText('Length'), { target: { value: '10' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Create clip' }));
    await vi.waitFor(() => expect(screen.getByTestId('clip-link').textContent).toBe(`${location.origin}/clips/${clipId}`));
    const [url, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe(`/api/live/streams/${channelId}/clips`);
    expect(init.method).toBe('POST');
    expect(JSON.parse(init.body as string)).toEqual({ durationS: 10, endOffsetMs: 12_346 });
    expect(screen.getByRole('link', { name: 'Open the clip' }).getAttribute('href')).toBe(`${location.origin}/clips/${clipId}`);
  });

  it("shows the server's reason when it refuses (rate limit)", async () => {
    mockFetch(429, { error: { code: 'rate_limited', message: 'You can cut 30 clips per hour; try again later' } });
    render(ClipButton, { channelId, behindLiveMs: () => 0 });
    await fireEvent.click(screen.getByRole('button', { name: 'Clip' }));
    await fireEvent.click(screen.getByRole('button', { name: 'Create clip' }));
    await vi.waitFor(() => expect(screen.getByRole('alert').textContent).toContain('30 clips per hour'));
    expect(screen.queryByTestId('clip-link')).toBeNull();
  });
});
