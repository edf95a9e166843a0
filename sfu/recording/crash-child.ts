/**
 * Test support for recorder.test.ts: records a synthetic program to argv[2]
 * at 4× real time, printing `pushed <seconds>` as it goes, until killed.
 */
import { Recorder } from './recorder.ts';
import { programFeed } from './testing.ts';

const feed = await programFeed({ seconds: 60, video: 'h264' });
const recorder = new Recorder({
  path: process.argv[2]!,
  video: { mimeType: 'video/H264', clockRate: 90000 },
  audio: { mimeType: 'audio/opus', clockRate: 48000, channels: 2 },
});
let i = 0;
const step = () => {
  const until = feed.packets[i]!.info.arrivalMs + 100;
  while (i < feed.packets.length && feed.packets[i]!.info.arrivalMs < until) {
    const p = feed.packets[i++]!;
    recorder.push(p.packet, p.info);
  }
  process.stdout.write(`pushed ${((feed.packets[i - 1]!.info.arrivalMs - feed.startMs) / 1000).toFixed(2)}\n`);
  if (i < feed.packets.length) setTimeout(step, 25);
};
step();
