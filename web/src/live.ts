import { call, tail, type DescribeStreamResponse, type EntryJson, type TailMessage } from './api.js';
import { h, link, replace } from './dom.js';
import { entryView } from './format.js';
import { attempt, clearError, showError, type Scope } from './view.js';

/** Entries kept on the page: the newest; older ones are dropped from view (the counter goes on). */
const KEPT = 200;
/** A stream tail starts this many entries before the head, so that there is something to see. */
const BACKLOG = 10n;

/**
 * The common part of both tails: a counter of entries received, a pause button (pausing closes
 * the stream; resuming opens it again after the last entry received, so nothing is missed or
 * repeated), and the newest entries first.
 */
class LiveList {
  readonly list = h('div', { className: 'entries', attrs: { id: 'live-entries' } });
  readonly counter = h('span', { attrs: { id: 'received' } }, '0');
  readonly state = h('span', { className: 'state', attrs: { id: 'live-state' } }, 'connecting');
  readonly pause = h('button', { attrs: { type: 'button', id: 'pause' } }, 'Pause');
  private received = 0;
  private controller: AbortController | undefined;
  paused = false;

  constructor(private readonly scope: Scope, private readonly open: (signal: AbortSignal) => Promise<void>) {
    this.pause.addEventListener('click', () => (this.paused ? this.resume() : this.stop()));
    scope.signal.addEventListener('abort', () => this.controller?.abort());
  }

  controls(): HTMLElement {
    return h('div', { className: 'live-controls' }, this.pause, h('span', null, 'received: ', this.counter), this.state);
  }

  add(entry: EntryJson, extra?: Node): void {
    this.received++;
    this.counter.textContent = String(this.received);
    this.list.prepend(entryView(entry, extra));
    while (this.list.childElementCount > KEPT) this.list.lastElementChild?.remove();
  }

  setState(text: string): void {
    this.state.textContent = text;
  }

  resume(): void {
    this.paused = false;
    this.pause.textContent = 'Pause';
    this.controller = new AbortController();
    const { signal } = this.controller;
    this.setState('connecting');
    this.open(signal).then(
      () => {
        if (!signal.aborted) this.setState('ended by the server');
      },
      (error: unknown) => {
        if (signal.aborted || this.scope.signal.aborted) return;
        this.setState('ended with an error');
        showError(error);
      },
    );
  }

  private stop(): void {
    this.paused = true;
    this.pause.textContent = 'Resume';
    this.controller?.abort();
    this.setState('paused');
  }
}

/** The entries of a tail's message: one (`entry`) or a batch (`entries`). */
function entriesOf(message: TailMessage): EntryJson[] {
  if (message.entry) return [message.entry];
  return message.entries?.entries ?? [];
}

/** The live tail of one stream (Subscribe). */
export function streamTailView(view: HTMLElement, scope: Scope): void {
  const path = scope.params.get('path') ?? '/';
  let next: bigint | undefined;
  const live = new LiveList(scope, (signal) =>
    tail('Subscribe', { stream: path, fromVersion: String(next ?? 0n), maxEntriesPerMessage: 100 }, signal, (message) => {
      for (const entry of entriesOf(message)) {
        live.add(entry);
        next = BigInt(entry.version) + 1n;
      }
      const caughtUp = message.caughtUp;
      if (caughtUp) {
        clearError();
        live.setState(`live (caught up at v${caughtUp.version ?? '0'})`);
      }
    }),
  );
  replace(
    view,
    h('h1', null, h('span', { className: 'muted' }, 'Live tail of '), link('stream', { path }, h('code', null, path))),
    live.controls(),
    live.list,
  );
  attempt(async () => {
    const description = await call<DescribeStreamResponse>('DescribeStream', { stream: path });
    const head = BigInt(description.headVersion);
    next = head >= BACKLOG ? head - BACKLOG + 1n : 0n;
    live.resume();
  });
}

/** The live tail of the feed (SubscribeFeed) over a subtree, with the feed's filters. */
export function feedView(view: HTMLElement, scope: Scope): void {
  const path = scope.params.get('path') ?? '/';
  const types = scope.params.get('types') ?? '';
  const excludeDescendants = scope.params.get('exclude') === '1';
  const form = h(
    'form',
    { className: 'filters', attrs: { id: 'feed-filters' } },
    h('label', null, 'Subtree ', h('input', { attrs: { name: 'path', value: path, size: '30' } })),
    h('label', null, 'Event types ', h('input', { attrs: { name: 'types', value: types, placeholder: 'all (comma-separated; order.* for a prefix)', size: '36' } })),
    h('label', null, h('input', { attrs: { name: 'exclude', type: 'checkbox', ...(excludeDescendants ? { checked: '' } : {}) } }), ' this stream only'),
    h('button', { attrs: { type: 'submit' } }, 'Apply'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const text = (name: string, otherwise: string) => {
      const value = data.get(name);
      return typeof value === 'string' ? value : otherwise;
    };
    const params = new URLSearchParams({ path: text('path', '/'), types: text('types', '') });
    if (data.get('exclude') !== null) params.set('exclude', '1');
    location.hash = `#/feed?${params.toString()}`;
  });
  let after: string | undefined;
  const selector = {
    stream: path,
    excludeDescendants,
    eventTypes: types
      .split(',')
      .map((type) => type.trim())
      .filter((type) => type !== ''),
  };
  const live = new LiveList(scope, (signal) =>
    tail('SubscribeFeed', { selector, ...(after !== undefined ? { afterPosition: after } : { fromNow: true }), maxEntriesPerMessage: 100 }, signal, (message) => {
      for (const entry of entriesOf(message)) {
        live.add(entry, link('stream', { path: entry.stream ?? '/' }, h('code', null, entry.stream ?? '')));
        after = entry.position;
      }
      const mark = message.caughtUp ?? message.checkpoint;
      if (mark) {
        after = mark.position ?? after;
        if (message.caughtUp) {
          clearError();
          live.setState(`live (position ${mark.position ?? '0'})`);
        }
      }
    }),
  );
  replace(view, h('h1', null, 'Feed'), form, live.controls(), live.list);
  live.resume();
}
