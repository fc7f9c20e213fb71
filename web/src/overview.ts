import { overview, type Overview } from './api.js';
import { h, replace } from './dom.js';
import { time } from './format.js';
import { attempt, clearError, type Scope } from './view.js';

const POLL_MS = 2000;

/**
 * The overview: health, store, version, and live figures. Appends/s and the mean subscriber lag
 * come from the difference of two readings of the server's counters.
 */
export function overviewView(view: HTMLElement, scope: Scope): void {
  const cards = h('div', { className: 'cards', attrs: { id: 'overview' } }, h('p', { className: 'muted' }, 'Loading…'));
  replace(view, h('h1', null, 'Overview'), cards);
  let previous: Overview | undefined;
  const poll = async () => {
    const current = await overview();
    clearError();
    if (scope.signal.aborted) return;
    replace(cards, ...cardsOf(current, previous));
    previous = current;
  };
  attempt(poll);
  const timer = setInterval(() => attempt(poll), POLL_MS);
  scope.signal.addEventListener('abort', () => clearInterval(timer));
}

function cardsOf(now: Overview, before: Overview | undefined) {
  const c = now.counters;
  const seconds = before ? (Date.parse(now.now) - Date.parse(before.now)) / 1000 : 0;
  const rate = before && seconds > 0 ? ((c.appends - before.counters.appends) / seconds).toFixed(1) : '…';
  const lagCount = before ? c.subscriberLagCount - before.counters.subscriberLagCount : 0;
  const lag =
    before === undefined ? '…' : lagCount > 0 ? `${(((c.subscriberLagSecondsSum - before.counters.subscriberLagSecondsSum) / lagCount) * 1000).toFixed(1)} ms` : 'no deliveries';
  const healthy = now.health === 'SERVING';
  return [
    card('Health', h('span', { className: healthy ? 'ok' : 'bad', attrs: { id: 'health' } }, now.health)),
    card('Store', now.store),
    card('Version', now.version),
    card('Security', `auth ${now.auth}, ${now.mutualTls ? 'mutual TLS' : now.tls ? 'TLS' : 'plaintext'}, encryption at rest ${now.encryption ? 'on' : 'off'}`),
    card('Appends/s', h('span', { attrs: { id: 'appends-rate' } }, rate), h('small', { className: 'muted' }, `${c.appends} entries since start`)),
    card(
      'Open subscriptions',
      h('span', { attrs: { id: 'open-subscriptions' } }, String(c.subscribeCalls + c.consoleStreamTails + c.feedSubscriptions)),
      h('small', { className: 'muted' }, `streams ${c.subscribeCalls + c.consoleStreamTails}, feed ${c.feedSubscriptions} (console tails: ${c.consoleStreamTails + c.consoleFeedTails})`),
    ),
    card('Subscriber lag', h('span', { attrs: { id: 'subscriber-lag' } }, lag), h('small', { className: 'muted' }, 'mean, over the last interval')),
    card('Started', time(now.startedAt)),
  ];
}

function card(title: string, ...content: Array<Node | string>): HTMLElement {
  return h('section', { className: 'card' }, h('h2', null, title), h('div', { className: 'figure' }, ...content));
}
