/**
 * One visible message bar backed by two live regions: polite for progress and success, assertive for
 * errors, so screen readers hear failures at once without progress chatter interrupting them.
 */
export type Tone = 'info' | 'success' | 'error' | 'busy';

let politeEl: HTMLElement | null = null;
let alertEl: HTMLElement | null = null;

export function initStatus(polite: HTMLElement, alert: HTMLElement): void {
  politeEl = polite;
  alertEl = alert;
}

export function announce(message: string, tone: Tone = 'info'): void {
  if (!politeEl || !alertEl) return;
  const target = tone === 'error' ? alertEl : politeEl;
  const other = tone === 'error' ? politeEl : alertEl;
  // Regions stay rendered (only empty) because some screen readers ignore regions that appear late.
  other.textContent = '';
  target.textContent = message;
  target.dataset.tone = tone;
}

export function clearStatus(): void {
  announce('', 'info');
  if (alertEl) alertEl.textContent = '';
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
