import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { startAuthTestServer, type AuthTestServer, type GrantedKey } from '../helpers/auth-server';
import { launchBrowser, requireChromium, screenshotWith, type TestBrowser } from '../helpers/browser';
import { REPO_ROOT } from '../helpers/process';
import { jsonEvent, tempDir } from '../helpers/server';

/**
 * The web console in a real browser (headless Chromium, Debian's package) against a real server
 * with auth required: refused without a key, the stream tree, a stream's entries and snapshots,
 * a live append arriving in a tail, the feed's filters, the overview, and a key revoked mid-tail.
 * Screenshots go to a temporary folder and are checked for the elements they must show.
 *
 * UPDATE_DOCS_SCREENSHOT=1 also writes docs/console.png (the README's screenshot).
 */
describe('web console in Chromium', function () {
  this.timeout(60_000);
  let eh: AuthTestServer;
  let url: string;
  let admin: GrantedKey;
  let reader: GrantedKey;
  let browser: TestBrowser;
  let page: Page;
  let shots: string;
  /** Errors the page threw or logged, but for the refusals the tests ask for. */
  const pageErrors: string[] = [];

  before(async function () {
    requireChromium(this);
    eh = await startAuthTestServer({ consoleListen: '127.0.0.1:0' });
    url = eh.test.server.consoleUrl ?? assert.fail('no console');
    admin = await eh.grant('admin', { allow: ['*=/**'] });
    reader = await eh.grant('reader', { allow: ['stream:read=/**', 'snapshot:read=/**'] });
    await eh.refresh();
    const api = eh.as(admin);
    await api.createStream({ stream: '/shop/orders', createParents: true });
    await api.createStream({ stream: '/shop/customers', createParents: true });
    await api.append({
      stream: '/shop/orders',
      events: [jsonEvent('order.placed', { orderId: 'o-1', items: [{ sku: 'tea', quantity: 2 }], total: 7.5 }, { metadata: { user: 'ann', correlation: 'c-42' } })],
    });
    await api.append({ stream: '/shop/orders', events: [{ type: 'order.note', data: Buffer.from('leave at the door'), contentType: 'text/plain' }] });
    // Untrusted data that would run if it were ever rendered as markup.
    await api.append({
      stream: '/shop/orders',
      events: [
        jsonEvent('order.tampered', { note: '<img src=x onerror="window.__pwned=1">' }, { metadata: { '<b>': '<script>window.__pwned=2</script>' } }),
        { type: 'order.blob', data: Buffer.from([0, 1, 2, 250, 251]), contentType: 'application/octet-stream' },
      ],
    });
    await api.putSnapshot({ stream: '/shop/orders', perspective: 'totals:v1', version: 3n, data: Buffer.from(JSON.stringify({ orders: 1, total: 7.5 })) });
    browser = await launchBrowser();
    page = await browser.page();
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (message) => {
      // Chromium logs each answer with an error status; the refusals are the tests' own doing.
      if (message.type() === 'error' && !/status of 40[13]/.test(message.text())) pageErrors.push(message.text());
    });
    shots = tempDir('eh-console-shots-');
  });

  after(async () => {
    await browser?.close();
    await eh?.stop();
    if (shots) fs.rmSync(shots, { recursive: true, force: true });
  });

  afterEach(() => assert.deepEqual(pageErrors.splice(0), [], 'the page threw or logged no errors'));

  async function useKey(key: string | undefined): Promise<void> {
    if (key === undefined) {
      await page.click('#forget-key');
      return;
    }
    await page.fill('#api-key', key);
    await page.click('#key-form button[type=submit]');
    await page.waitForSelector('#key-state:has-text("key set")');
  }

  it('is refused without a key, and says how to get in', async () => {
    await page.goto(url);
    const notice = page.locator('#notice.refusal');
    await notice.waitFor();
    assert.match(await notice.innerText(), /UNAUTHENTICATED: missing API key.*enter an API key above/s);
    await screenshotWith(page, shots, 'refused', { 'header.top': 1, '#key-form input[type=password]': 1, '#notice.refusal': 1 });
  });

  it('opens the stream tree, lazily, with head versions and child counts', async () => {
    await useKey(reader.key);
    await page.goto(`${url}#/streams`);
    const shop = page.locator('.tree-node[data-path="/shop"]');
    await shop.waitFor();
    // The parent's head: one entry per child created under it.
    assert.match(await shop.locator('> .row').innerText(), /shop\s+v2\s+2 children/);
    assert.equal(await page.locator('.tree-node[data-path="/shop/orders"]').count(), 0, 'children are listed when opened');
    await shop.locator('> .row .toggle').click();
    const orders = page.locator('.tree-node[data-path="/shop/orders"]');
    await orders.waitFor();
    assert.match(await orders.locator('> .row').innerText(), /orders\s+v3\s+0 children/);
    await screenshotWith(page, shots, 'tree', { '#tree .tree-node': 4, '#tree .badge': 6 });
    // The key was kept in memory only: not in storage, cookies or the address.
    // (Page code as strings: the tests compile without the DOM's types.)
    assert.deepEqual(await page.evaluate('[localStorage.length, sessionStorage.length, document.cookie]'), [0, 0, '']);
    assert.ok(!page.url().includes(reader.key));
  });

  it('reads a stream: entries pretty-printed by content type, metadata, ids, times, sizes', async () => {
    await page.locator('.tree-node[data-path="/shop/orders"] > .row a').click();
    await page.waitForSelector('#entries .entry');
    assert.equal(await page.locator('#stream-path').innerText(), '/shop/orders');
    assert.deepEqual(await versionsShown(page), ['3', '2', '1', '0']);
    const placed = page.locator('.entry[data-version="1"]');
    assert.match(await placed.locator('.event-head').innerText(), /order\.placed\s+\S+\s+application\/json\s+\d+ B/);
    assert.match(await placed.locator('.metadata').innerText(), /user\s+ann/);
    assert.ok((await placed.locator('pre.json .j-key').count()) >= 4, 'JSON is pretty-printed and coloured');
    assert.match(await placed.locator('pre.json').innerText(), /"orderId": "o-1",\n {2}"items": \[/);
    assert.equal(await page.locator('.entry[data-version="2"] pre.text').innerText(), 'leave at the door');
    assert.match(await page.locator('.entry[data-version="3"] pre.binary').innerText(), /^00000000 {2}00 01 02 fa fb/);
    assert.ok((await page.locator('.entry[data-version="1"] time').count()) >= 1);
    // Untrusted data is text, never markup.
    assert.match(await page.locator('.entry[data-version="3"] pre.json').innerText(), /<img src=x onerror=/);
    assert.match(await page.locator('.entry[data-version="3"] .metadata').innerText(), /<b>\s+<script>/);
    assert.equal(await page.evaluate('window.__pwned'), undefined);
    await screenshotWith(page, shots, 'stream', { '#stream-summary dt': 5, '#pager a': 2, '#entries .entry': 4, '#entries pre.data': 5 });

    await page.locator('nav.tabs a', { hasText: 'Snapshots' }).click();
    const snapshot = page.locator('#snapshots .snapshot');
    await snapshot.waitFor();
    assert.match(await snapshot.innerText(), /totals:v1\s+at v3/);
    assert.match(await snapshot.locator('pre.json').innerText(), /"orders": 1/);
  });

  it('pages a stream both ways', async () => {
    await page.goto(`${url}#/stream?path=${encodeURIComponent('/shop/orders')}&from=1`);
    await page.waitForSelector('#entries .entry[data-version="1"]');
    assert.deepEqual(await versionsShown(page), ['1', '0']);
    await page.locator('#pager a', { hasText: 'Newer' }).click();
    await page.waitForSelector('#entries .entry[data-version="3"]');
    assert.deepEqual(await versionsShown(page), ['3', '2']);
    if (process.env.UPDATE_DOCS_SCREENSHOT === '1') {
      await page.goto(`${url}#/stream?path=${encodeURIComponent('/shop/orders')}&from=2`);
      await page.waitForSelector('#entries .entry[data-version="2"]');
      await page.screenshot({ path: path.join(REPO_ROOT, 'docs', 'console.png') });
    }
  });

  it('sees a live append arrive in a stream\'s tail, and misses nothing across a pause', async () => {
    await page.goto(`${url}#/tail?path=${encodeURIComponent('/shop/orders')}`);
    await page.waitForSelector('#live-state:has-text("live")');
    assert.equal(await page.locator('#received').innerText(), '4');
    await eh.as(admin).append({ stream: '/shop/orders', events: [jsonEvent('order.paid', { orderId: 'o-1' })] });
    await page.waitForSelector('#live-entries .entry[data-version="4"]');
    assert.equal(await page.locator('#received').innerText(), '5');
    assert.equal(await page.locator('#live-entries .entry').first().getAttribute('data-version'), '4', 'newest first');
    await screenshotWith(page, shots, 'tail', { '#pause': 1, '#received': 1, '#live-entries .entry': 5 });

    await page.click('#pause');
    await page.waitForSelector('#live-state:has-text("paused")');
    await eh.as(admin).append({ stream: '/shop/orders', events: [jsonEvent('order.shipped', { orderId: 'o-1' })] });
    await page.click('#pause');
    await page.waitForSelector('#live-entries .entry[data-version="5"]');
    assert.equal(await page.locator('#received').innerText(), '6', 'resumed after the last entry: none repeated');
    assert.equal(await page.locator('#live-entries .entry[data-version="5"]').count(), 1);
  });

  it('tails the feed with a filter on event types', async () => {
    await page.goto(`${url}#/feed?path=${encodeURIComponent('/shop')}&types=${encodeURIComponent('order.*')}`);
    await page.waitForSelector('#live-state:has-text("live")');
    const api = eh.as(admin);
    await api.append({ stream: '/shop/customers', events: [jsonEvent('customer.joined', { name: 'bo' })] });
    await api.append({ stream: '/shop/orders', events: [jsonEvent('order.refunded', { orderId: 'o-1' })] });
    const refunded = page.locator('#live-entries .entry', { hasText: 'order.refunded' });
    await refunded.waitFor();
    // The feed is in commit order: the filtered-out entry would have come first.
    assert.equal(await page.locator('#live-entries .entry', { hasText: 'customer.joined' }).count(), 0);
    assert.match(await refunded.locator('header').innerText(), /\/shop\/orders/);
    assert.equal(await page.locator('#received').innerText(), '1');
    await screenshotWith(page, shots, 'feed', { '#feed-filters input': 3, '#live-entries .entry': 1 });
  });

  it('shows the overview: health, store, version and live figures', async () => {
    await page.goto(`${url}#/overview`);
    await page.waitForSelector('#health:has-text("SERVING")');
    // The rates need two readings.
    await page.locator('#appends-rate', { hasText: /^\d/ }).waitFor();
    const text = await page.locator('#overview').innerText();
    assert.match(text, /Store\s+sqlite/i);
    assert.match(text, /Version\s+\d+\.\d+\.\d+/i);
    assert.match(text, /auth required/);
    assert.match(await page.locator('#appends-rate').innerText(), /^\d+\.\d$/);
    await screenshotWith(page, shots, 'overview', { '#overview .card': 8, '#health.ok': 1 });
  });

  it('ends a tail with a refusal when its key is revoked', async () => {
    const doomed = await eh.grant('doomed', { allow: ['stream:read=/**'] });
    await eh.refresh();
    await useKey(doomed.key);
    await page.goto(`${url}#/tail?path=${encodeURIComponent('/shop/orders')}`);
    await page.waitForSelector('#live-state:has-text("live")');
    await eh.revoke(doomed);
    await eh.refresh();
    await page.waitForSelector('#live-state:has-text("ended with an error")');
    assert.match(await page.locator('#notice.refusal').innerText(), /UNAUTHENTICATED: unknown or revoked API key/);
  });
});

/** The versions of the entries on the page, in the order shown. */
async function versionsShown(page: Page): Promise<string[]> {
  const entries = await page.locator('#entries .entry').all();
  return Promise.all(entries.map(async (entry) => (await entry.getAttribute('data-version')) ?? ''));
}
