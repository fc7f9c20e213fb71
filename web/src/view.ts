import { CallError } from './api.js';
import { h, replace } from './dom.js';

/**
 * What a view gets: its parameters, and a signal that fires when the operator leaves it (another
 * route, a new key), which stops its tails and timers.
 */
export interface Scope {
  params: URLSearchParams;
  signal: AbortSignal;
}

/** Shows an error above the view; a refusal says what to do about it. */
export function showError(error: unknown): void {
  const notice = document.getElementById('notice');
  if (!notice) return;
  if (error instanceof DOMException && error.name === 'AbortError') return;
  let text: string;
  if (error instanceof CallError) {
    const fields = error.violations.map((v) => `${v.field}: ${v.description}`).join('; ');
    text = `${error.refused ? 'Refused' : 'Failed'}: ${error.code}: ${error.message}${fields ? ` (${fields})` : ''}`;
    if (error.code === 'UNAUTHENTICATED') text += ' — enter an API key above.';
  } else {
    text = `Failed: ${error instanceof Error ? error.message : String(error)}`;
  }
  notice.className = error instanceof CallError && error.refused ? 'refusal' : 'failure';
  replace(notice, h('span', null, text), h('button', { attrs: { type: 'button' }, on: { click: clearError } }, 'Dismiss'));
  notice.hidden = false;
}

export function clearError(): void {
  const notice = document.getElementById('notice');
  if (notice) notice.hidden = true;
}

/** Runs a view's loading step, showing its error rather than leaving an unhandled rejection. */
export function attempt(work: () => Promise<void>): void {
  work().catch(showError);
}
