/**
 * User Timing marks the first time the page gets somewhere (the server's hello, the first answer of each
 * request type, the player's device and consumers): where the time to the first picture goes can be read
 * off the page (`performance.getEntriesByType('mark')`, as `testkit`'s `clickToPicture` does). Once per name
 * and page, so a long session does not pile them up.
 */
const marked = new Set<string>();

export function markOnce(name: string): void {
  if (marked.has(name) || typeof performance === 'undefined') return;
  marked.add(name);
  performance.mark(name);
}
