/**
 * Copy to the clipboard where the browser allows it. The async clipboard API
 * exists only in secure contexts (HTTPS or localhost); elsewhere, or when the
 * browser refuses, the caller selects the text so the person can copy it.
 */
export async function copyText(text: string): Promise<boolean> {
  if (typeof window === 'undefined' || !window.isSecureContext || !navigator.clipboard?.writeText) return false;
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}

/** Selects an element's text (or a field's value) for a manual copy. */
export function selectForCopy(el: Element): void {
  if (el instanceof HTMLInputElement || el instanceof HTMLTextAreaElement) {
    el.focus();
    el.select();
    return;
  }
  const range = document.createRange();
  range.selectNodeContents(el);
  const selection = getSelection();
  selection?.removeAllRanges();
  selection?.addRange(range);
}

export const MANUAL_COPY_HINT =
  'Selected: press Ctrl+C (⌘C on a Mac) to copy. This page is not on HTTPS, so the browser keeps the clipboard closed.';
export const REFUSED_COPY_HINT = 'Selected: press Ctrl+C (⌘C on a Mac) to copy. The browser did not allow copying.';
