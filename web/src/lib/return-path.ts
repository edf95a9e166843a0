/** Where sign-in sends a person back to: only paths on this site, never the sign-in page itself. */
export function safeReturnPath(next: string | null | undefined): string | null {
  if (!next || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return null;
  if (next === '/login' || next.startsWith('/login?')) return null;
  return next;
}

/** The sign-in link for a page: `/login?next=<that page>`. */
export function loginHref(here: string): string {
  const next = safeReturnPath(here);
  return next && next !== '/' ? `/login?next=${encodeURIComponent(next)}` : '/login';
}
