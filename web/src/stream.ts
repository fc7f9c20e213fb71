import { call, type DescribeStreamResponse, type GetSnapshotResponse, type ReadResponse } from './api.js';
import { h, link, replace } from './dom.js';
import { bytesOf, entryView, formatBytes, payload, time } from './format.js';
import { attempt, clearError, type Scope } from './view.js';

/** Entries per page. */
const PAGE = 20;

/**
 * A stream: its description, its entries paged both ways (newest first on the page), and its
 * snapshots. Which page is shown is in the route (`from`, `direction`), so the back button works.
 */
export function streamView(view: HTMLElement, scope: Scope): void {
  const path = scope.params.get('path') ?? '/';
  const tab = scope.params.get('tab') ?? 'entries';
  const summary = h('dl', { className: 'summary', attrs: { id: 'stream-summary' } });
  const body = h('div', { attrs: { id: 'stream-body' } });
  replace(
    view,
    h('h1', null, h('span', { className: 'muted' }, 'Stream '), h('code', { attrs: { id: 'stream-path' } }, path)),
    h(
      'nav',
      { className: 'tabs' },
      link('stream', { path }, h('span', { className: tab === 'entries' ? 'active' : '' }, 'Entries')),
      link('stream', { path, tab: 'snapshots' }, h('span', { className: tab === 'snapshots' ? 'active' : '' }, 'Snapshots')),
      link('tail', { path }, 'Live tail'),
      link('feed', { path }, 'Feed of this subtree'),
      link('streams', { path }, 'Children'),
    ),
    summary,
    body,
  );
  attempt(async () => {
    const description = await call<DescribeStreamResponse>('DescribeStream', { stream: path });
    clearError();
    replace(
      summary,
      ...pair('Head version', description.headVersion),
      ...pair('Created', time(description.createdAt)),
      ...pair('Children', description.childCount),
      ...pair('Stored', formatBytes(Number(description.bytesStored))),
      ...pair('Snapshots', description.snapshotPerspectives.length === 0 ? 'none' : description.snapshotPerspectives.join(', ')),
    );
    if (tab === 'snapshots') await snapshots(body, path, description);
    else await entries(body, path, scope.params, description);
  });
}

function pair(term: string, value: Node | string): HTMLElement[] {
  return [h('dt', null, term), h('dd', null, value)];
}

async function entries(body: HTMLElement, path: string, params: URLSearchParams, description: DescribeStreamResponse): Promise<void> {
  const from = params.get('from');
  const forward = params.get('direction') === 'forward';
  const page = await call<ReadResponse>('Read', {
    stream: path,
    ...(from !== null ? { fromVersion: from } : {}),
    limit: PAGE,
    direction: forward ? 'DIRECTION_FORWARD' : 'DIRECTION_BACKWARD',
  });
  const shown = [...page.entries].sort((a, b) => (BigInt(b.version) > BigInt(a.version) ? 1 : -1));
  const newest = shown[0]?.version;
  const oldest = shown[shown.length - 1]?.version;
  const head = BigInt(page.headVersion);
  const pager = h(
    'nav',
    { className: 'pager', attrs: { id: 'pager' } },
    link('stream', { path }, 'Newest'),
    newest !== undefined && BigInt(newest) < head ? link('stream', { path, from: String(BigInt(newest) + 1n), direction: 'forward' }, '◀ Newer') : h('span', { className: 'muted' }, '◀ Newer'),
    oldest !== undefined && BigInt(oldest) > 0n ? link('stream', { path, from: String(BigInt(oldest) - 1n) }, 'Older ▶') : h('span', { className: 'muted' }, 'Older ▶'),
    link('stream', { path, from: '0', direction: 'forward' }, 'Oldest'),
    h('span', { className: 'muted' }, shown.length > 0 ? `v${oldest ?? ''}–v${newest ?? ''} of ${description.headVersion}` : 'no entries'),
  );
  replace(body, pager, h('div', { className: 'entries', attrs: { id: 'entries' } }, ...shown.map((entry) => entryView(entry))));
}

async function snapshots(body: HTMLElement, path: string, description: DescribeStreamResponse): Promise<void> {
  if (description.snapshotPerspectives.length === 0) {
    replace(body, h('p', { className: 'muted', attrs: { id: 'snapshots' } }, 'No snapshots.'));
    return;
  }
  const list = h('div', { className: 'entries', attrs: { id: 'snapshots' } });
  replace(body, list);
  for (const perspective of description.snapshotPerspectives) {
    const { snapshot } = await call<GetSnapshotResponse>('GetSnapshot', { stream: path, perspective });
    if (!snapshot) continue;
    list.append(
      h(
        'article',
        { className: 'entry snapshot' },
        h(
          'header',
          null,
          h('span', { className: 'event-type' }, snapshot.perspective),
          h('span', { className: 'version' }, `at v${snapshot.version}`),
          time(snapshot.storedAt),
          h('span', { className: 'tag' }, snapshot.contentType === '' ? 'application/json' : snapshot.contentType),
          h('span', { className: 'muted' }, formatBytes(bytesOf(snapshot.data).byteLength)),
        ),
        payload(snapshot.data, snapshot.contentType),
      ),
    );
  }
}
