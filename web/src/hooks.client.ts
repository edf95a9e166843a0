/** Runs once when the app starts, before the first page's code has loaded. */
import type { ClientInit } from '@sveltejs/kit';
import { socket } from '$lib/socket.svelte.ts';

/** Pages that start a player at once: the channel page and the embeddable player. */
const PLAYER_PAGE = /^\/(live|embed)\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const init: ClientInit = () => {
  // the socket opens with the app, not when a page first asks: a player finds the server's hello already in
  socket.open();
  // a channel page's player needs the device and certificate first: made while the page's code loads
  if (PLAYER_PAGE.test(location.pathname))
    void import('$lib/viewer-device.ts').then((m) => Promise.all([m.viewerDevice(), m.viewerCertificate()])).catch(() => {});
};
