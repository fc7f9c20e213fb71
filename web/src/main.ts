import { hasKey, overview, setKey } from './api.js';
import { feedView, streamTailView } from './live.js';
import { overviewView } from './overview.js';
import { streamView } from './stream.js';
import { treeView } from './tree.js';
import { clearError, type Scope } from './view.js';

/** The routes of the console, by the fragment's first segment. */
const VIEWS: Record<string, (view: HTMLElement, scope: Scope) => void> = {
  overview: overviewView,
  streams: treeView,
  stream: streamView,
  tail: streamTailView,
  feed: feedView,
};

let current: AbortController | undefined;

/** Shows the route of the fragment, after stopping the previous view's tails and timers. */
function render(): void {
  current?.abort();
  current = new AbortController();
  const [route = 'overview', query = ''] = location.hash.replace(/^#\/?/, '').split('?');
  const show = VIEWS[route] ?? overviewView;
  const view = document.getElementById('view');
  if (!view) return;
  clearError();
  for (const link of document.querySelectorAll<HTMLAnchorElement>('[data-nav]')) {
    link.classList.toggle('active', link.dataset.nav === route || (route === 'stream' && link.dataset.nav === 'streams'));
  }
  show(view, { params: new URLSearchParams(query), signal: current.signal });
}

/** The key form: the key goes to a variable (api.ts) and the field is emptied at once. */
function setUpKeyForm(): void {
  const form = document.getElementById('key-form') as HTMLFormElement | null;
  const input = document.getElementById('api-key') as HTMLInputElement | null;
  const state = document.getElementById('key-state');
  if (!form || !input || !state) return;
  const showState = () => (state.textContent = hasKey() ? 'key set (this tab only)' : 'no key');
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    setKey(input.value.trim());
    input.value = '';
    showState();
    render();
  });
  document.getElementById('forget-key')?.addEventListener('click', () => {
    setKey(undefined);
    showState();
    render();
  });
  showState();
  // A server without auth answers the overview without a key: then say that none is needed.
  overview().then(
    (facts) => {
      if (facts.auth === 'off' && !hasKey()) state.textContent = 'auth off: no key needed';
    },
    () => undefined,
  );
}

setUpKeyForm();
window.addEventListener('hashchange', render);
render();
