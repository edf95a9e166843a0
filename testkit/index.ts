export * from './rtp/packet.ts';
export * from './rtp/h264.ts';
export * from './media/fixtures.ts';
export * from './peers/http.ts';
export * from './peers/receiver.ts';
export * from './peers/obs-publisher.ts';
export * from './peers/whep-viewer.ts';
export * from './browser.ts';
