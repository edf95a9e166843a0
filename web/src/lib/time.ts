/** Formats a duration in ms as m:ss or h:mm:ss (negative = behind live). */
export function formatDuration(ms: number): string {
  const s = Math.round(Math.abs(ms) / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return `${ms < 0 ? '-' : ''}${h ? `${h}:${String(m).padStart(2, '0')}` : m}:${sec}`;
}
