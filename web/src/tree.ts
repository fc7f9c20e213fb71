import { call, type DescribeStreamResponse, type ListChildrenResponse } from './api.js';
import { h, link, replace, routeHref } from './dom.js';
import { attempt, showError, type Scope } from './view.js';

/** Children asked per page. */
const PAGE = 50;
/** DescribeStream calls in flight at once while a page of children is described. */
const DESCRIBE_CONCURRENCY = 6;

/**
 * The stream tree: lazy (a stream's children are listed when it is opened) and paged (a "more"
 * button asks for the next page), each child with its head version and child count.
 */
export function treeView(view: HTMLElement, scope: Scope): void {
  const rootPath = scope.params.get('path') ?? '/';
  const tree = h('ul', { className: 'tree', attrs: { id: 'tree' } });
  // A key that may read only a subtree starts there: the tree can be rooted at any stream.
  const input = h('input', { attrs: { name: 'path', value: rootPath, size: '40', 'aria-label': 'subtree' } });
  const form = h('form', { className: 'filters', attrs: { id: 'tree-root' } }, h('label', null, 'From ', input), h('button', { attrs: { type: 'submit' } }, 'Open'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    location.hash = routeHref('streams', { path: input.value.trim() === '' ? '/' : input.value.trim() });
  });
  replace(view, h('h1', null, 'Streams'), form, tree);
  attempt(async () => {
    const root = await call<DescribeStreamResponse>('DescribeStream', { stream: rootPath });
    tree.append(node(root, scope, true));
  });
}

function node(stream: DescribeStreamResponse, scope: Scope, open = false): HTMLLIElement {
  const children = h('ul', { className: 'children' });
  const hasChildren = stream.childCount !== '0';
  const toggle = h('button', { className: 'toggle', attrs: { type: 'button', 'aria-expanded': 'false', ...(hasChildren ? {} : { disabled: '' }) } }, hasChildren ? '▸' : '·');
  let loaded = false;
  const expand = () => {
    const expanded = toggle.getAttribute('aria-expanded') === 'true';
    toggle.setAttribute('aria-expanded', String(!expanded));
    toggle.textContent = expanded ? '▸' : '▾';
    children.hidden = expanded;
    if (!expanded && !loaded) {
      loaded = true;
      attempt(() => loadChildren(stream.stream, children, '', scope));
    }
  };
  toggle.addEventListener('click', expand);
  const name = stream.stream === '/' ? '/' : stream.stream.slice(stream.stream.lastIndexOf('/') + 1);
  const item = h(
    'li',
    { className: 'tree-node', attrs: { 'data-path': stream.stream } },
    h(
      'div',
      { className: 'row' },
      toggle,
      link('stream', { path: stream.stream }, h('span', { className: 'name' }, name)),
      h('span', { className: 'badge', attrs: { title: 'head version' } }, `v${stream.headVersion}`),
      h('span', { className: 'badge muted', attrs: { title: 'children' } }, `${stream.childCount} child${stream.childCount === '1' ? '' : 'ren'}`),
    ),
    children,
  );
  if (open && hasChildren) expand();
  return item;
}

async function loadChildren(path: string, into: HTMLUListElement, pageToken: string, scope: Scope): Promise<void> {
  const page = await call<ListChildrenResponse>('ListChildren', { stream: path, limit: PAGE, pageToken });
  const described = await describeAll(page.children);
  if (scope.signal.aborted) return;
  described.forEach((child, i) => {
    const childPath = page.children[i] ?? '';
    into.append(child ? node(child, scope) : h('li', { className: 'tree-node muted', attrs: { 'data-path': childPath } }, `${childPath} (not readable with this key)`));
  });
  if (page.nextPageToken !== '') {
    const more: HTMLLIElement = h(
      'li',
      { className: 'more' },
      h(
        'button',
        {
          attrs: { type: 'button' },
          on: {
            click: () => {
              more.remove();
              attempt(() => loadChildren(path, into, page.nextPageToken, scope));
            },
          },
        },
        `More children of ${path}`,
      ),
    );
    into.append(more);
  }
}

/** Each child's description, a few at a time; a child the key may not read shows as such. */
async function describeAll(paths: string[]): Promise<Array<DescribeStreamResponse | undefined>> {
  const results = paths.map((): DescribeStreamResponse | undefined => undefined);
  let next = 0;
  const worker = async () => {
    while (next < paths.length) {
      const index = next++;
      try {
        results[index] = await call<DescribeStreamResponse>('DescribeStream', { stream: paths[index] });
      } catch (error) {
        results[index] = undefined;
        if (!(error instanceof Error && 'refused' in error && error.refused === true)) showError(error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(DESCRIBE_CONCURRENCY, paths.length) }, worker));
  return results;
}
