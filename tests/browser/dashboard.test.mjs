// The dashboard at `/`, in Debian's Chromium, against the real hub binary.
// Every test starts its own hub on a fresh data dir and fails on any console
// error or uncaught exception in its pages.

import assert from 'node:assert/strict';
import { copyFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';

import {
  ARTIFACTS,
  REPO_ROOT,
  demoToken,
  duplicates,
  launchBrowser,
  logEntries,
  openPage,
  publish,
  startHub,
  stopHub,
  tempDataDir,
  unique,
  untilSubscribers,
  waitForEvents,
  waitForState,
  waitUntil,
} from './support.mjs';

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(() => browser?.close());

function assertNoPageErrors(...pages) {
  assert.deepEqual(pages.flatMap((page) => page.errors), [], 'the page logged errors');
}

// What Chromium itself reports when the hub dies (SIGKILL) in the middle of
// a stream's chunked body: the expected effect of the kill, not a page error.
// Anything else, or this on another URL, still fails the test.
const KILLED_STREAM = /^console error: Failed to load resource: net::ERR_INCOMPLETE_CHUNKED_ENCODING \(http:\/\/127\.0\.0\.1:\d+\/\.well-known\/mercure\?[^)]*\)$/;

function assertNoPageErrorsBesidesTheKill(page) {
  const killed = page.errors.filter((e) => KILLED_STREAM.test(e));
  // The dashboard holds two streams (the log's and the chart's).
  assert.ok(killed.length <= 2, `more broken streams than the one kill explains: ${killed.join('\n')}`);
  assert.deepEqual(page.errors.filter((e) => !KILLED_STREAM.test(e)), [], 'the page logged errors');
}

async function reconnects(page) {
  return Number(await page.textContent('#reconnects'));
}

test('shows the stream open and an event published over HTTP, and publishes from its form', async (t) => {
  const hub = await startHub(t, { dataDir: await tempDataDir(t) });
  const page = await openPage(t, browser, hub.url);
  await waitForState(page, 'open', { hub });
  assert.equal(await page.textContent('#reconnects'), '0');

  const token = await demoToken(hub);
  const data = unique('hello from the test');
  const id = await publish(hub, token, { topic: 'demo/chat', data });
  await waitForEvents(page, [id], { hub });
  const entry = page.locator(`#log > li[data-id="${id}"]`);
  assert.equal(await entry.locator('.ev-data').textContent(), data);
  assert.equal(await entry.getAttribute('data-type'), 'message');
  assert.match(await entry.locator('.ev-id').textContent(), new RegExp(id));
  assert.equal(await page.textContent('#last-event-id'), id);
  assert.equal(await page.textContent('#event-count'), '1');

  // The page's own form, with a type: it listens for the type before publishing.
  await waitUntil(page, 'a demo token', () => /Development mode/.test(document.querySelector('#token-status').textContent));
  const formData = unique('typed from the form');
  await page.fill('#pub-data', formData);
  await page.fill('#pub-type', 'chat');
  await page.click('#pub-submit');
  await waitUntil(page, 'the publish result', () => document.querySelector('#publish-result').dataset.status === 'ok');
  const formId = await page.getAttribute('#publish-result', 'data-id');
  assert.match(formId, /^urn:uuid:/);
  assert.match(await page.textContent('#publish-result'), new RegExp(formId));
  await waitForEvents(page, [formId], { hub });
  const typed = page.locator(`#log > li[data-id="${formId}"]`);
  assert.equal(await typed.getAttribute('data-type'), 'chat');
  assert.equal(await typed.locator('.ev-data').textContent(), formData);
  assert.equal(await page.inputValue('#types'), 'chat');

  // Without --demo, the chart says how to get data.
  await waitUntil(page, 'the chart hint', () => {
    const hint = document.querySelector('#chart-hint');
    return !hint.hidden && hint.textContent.includes('--demo');
  });
  assert.equal(await page.getAttribute('#chart', 'data-points'), '0');
  assertNoPageErrors(page);
});

test('the publish form shows the hub\'s error message', async (t) => {
  const hub = await startHub(t, { dataDir: await tempDataDir(t) });
  const page = await openPage(t, browser, hub.url);
  await waitForState(page, 'open', { hub });
  await page.click('#token-details summary');
  await page.fill('#token', 'not.a-valid.token');
  await page.click('#pub-submit');
  await waitUntil(page, 'the publish error', () => document.querySelector('#publish-result').dataset.status === 'error');
  const shown = await page.textContent('#publish-result');
  assert.match(shown, /^401 Unauthorized: \S/, `shown: ${shown}`);
  assert.equal(await page.locator('#log > li').count(), 0);
  // The browser itself reports the failed request; nothing else may appear.
  const unexpected = page.errors.filter((e) => !/Failed to load resource: the server responded with a status of 401/.test(e));
  assert.deepEqual(unexpected, []);
});

test('with a JWT key configured, the page asks for a token and logs no error', async (t) => {
  const hub = await startHub(t, {
    dataDir: await tempDataDir(t),
    extraArgs: ['--jwt-key', 'browser-test-key-0123456789abcdef0123', '--anonymous'],
  });
  const page = await openPage(t, browser, hub.url);
  await waitForState(page, 'open', { hub });
  await waitUntil(page, 'the paste-a-token hint', () => /paste a token/.test(document.querySelector('#token-status').textContent));
  assert.equal(await page.locator('#token-details').getAttribute('open'), '');
  assertNoPageErrors(page);
});

test('resumes after the hub is killed and restarted: new events once each, reconnect counted', async (t) => {
  const dataDir = await tempDataDir(t);
  const first = await startHub(t, { dataDir });
  const token = await demoToken(first);
  const page = await openPage(t, browser, first.url);
  await waitForState(page, 'open', { hub: first });
  const before = [];
  for (const n of [1, 2]) before.push(await publish(first, token, { topic: 'demo/chat', data: `before ${n}` }));
  await waitForEvents(page, before, { hub: first });

  await stopHub(first, 'SIGKILL');
  await waitForState(page, 'reconnecting');
  assert.equal(await reconnects(page), 1);

  const second = await startHub(t, { dataDir, port: first.port });
  assert.equal(second.url, first.url);
  await waitForState(page, 'open', { hub: second });
  // The development key lives in the data dir: the old token still works.
  const after = [];
  for (const n of [1, 2, 3]) after.push(await publish(second, token, { topic: 'demo/chat', data: `after ${n}` }));
  await waitForEvents(page, after, { hub: second });

  const entries = await logEntries(page);
  assert.deepEqual(duplicates(entries), []);
  assert.deepEqual(entries.map((e) => e.id), [...before, ...after]);
  assert.deepEqual(entries.map((e) => e.data), ['before 1', 'before 2', 'after 1', 'after 2', 'after 3']);
  assert.equal(await reconnects(page), 1);
  assert.equal(await page.textContent('#last-event-id'), after[2]);
  assertNoPageErrorsBesidesTheKill(page);
});

test('events published while the page waits to reconnect arrive by replay, in order, once each', async (t) => {
  const dataDir = await tempDataDir(t);
  const first = await startHub(t, { dataDir });
  const token = await demoToken(first);
  const page = await openPage(t, browser, first.url);
  await waitForState(page, 'open', { hub: first });
  // A long retry delay: the browser stays away long enough for the hub to
  // restart and take the publishes below before the page is back.
  const retryId = await publish(first, token, { topic: 'demo/chat', data: 'slow retry', retry: 4000 });
  await waitForEvents(page, [retryId], { hub: first });

  await stopHub(first, 'SIGKILL');
  await waitForState(page, 'reconnecting');
  const lost = Date.now();
  const second = await startHub(t, { dataDir, port: first.port });
  const missed = [];
  for (const n of [1, 2, 3]) missed.push(await publish(second, token, { topic: 'demo/chat', data: `missed ${n}` }));
  t.diagnostic(`restarted and published ${Date.now() - lost} ms after the page lost the stream (retry delay 4000 ms)`);
  // Proof that they were published while the page was away.
  assert.equal(await page.textContent('#state'), 'reconnecting', 'the page reconnected before the publishes; the retry delay is too short');
  assert.equal(await page.locator('#log > li').count(), 1);

  await waitForState(page, 'open', { hub: second });
  await waitForEvents(page, missed, { hub: second });
  const entries = await logEntries(page);
  assert.deepEqual(duplicates(entries), []);
  assert.deepEqual(entries.map((e) => e.id), [retryId, ...missed]);
  assert.deepEqual(entries.map((e) => e.data), ['slow retry', 'missed 1', 'missed 2', 'missed 3']);
  assert.equal(await reconnects(page), 1);
  assertNoPageErrorsBesidesTheKill(page);
});

test('a private update reaches the page with a matching cookie and not the page without', async (t) => {
  const hub = await startHub(t, { dataDir: await tempDataDir(t) });
  const token = await demoToken(hub);
  const withCookie = await openPage(t, browser, hub.url, {}, (context) =>
    context.addCookies([{ name: 'mercureAuthorization', value: token, url: hub.url, sameSite: 'Strict' }]),
  );
  const without = await openPage(t, browser, hub.url);
  await waitForState(withCookie, 'open', { hub });
  await waitForState(without, 'open', { hub });
  assert.equal(await withCookie.isChecked('#receive-private'), true);
  assert.equal(await without.isChecked('#receive-private'), false);
  // Whatever the page does with its own token has happened before the publishes.
  for (const page of [withCookie, without]) {
    await waitUntil(page, 'a demo token', () => /Development mode/.test(document.querySelector('#token-status').textContent));
  }

  const secret = await publish(hub, token, { topic: 'demo/chat', data: 'for token holders', private: 'on' });
  const control = await publish(hub, token, { topic: 'demo/chat', data: 'for everyone' });
  await waitForEvents(withCookie, [secret, control], { hub });
  await waitForEvents(without, [control], { hub });
  assert.deepEqual((await logEntries(withCookie)).map((e) => e.id), [secret, control]);
  // The control was published after the private update and has arrived, so
  // the private one would have arrived by now too.
  assert.deepEqual((await logEntries(without)).map((e) => e.id), [control]);
  assert.equal(await without.evaluate(() => document.cookie.includes('mercureAuthorization')), false);

  // Opting in on the page sets the cookie and reopens the stream with it.
  await without.check('#receive-private');
  await waitForState(without, 'open', { hub });
  assert.equal(await without.evaluate(() => document.cookie.includes('mercureAuthorization=')), true);
  const second = await publish(hub, token, { topic: 'demo/chat', data: 'for token holders, again', private: 'on' });
  await waitForEvents(without, [second], { hub });
  assert.deepEqual((await logEntries(without)).map((e) => e.id), [control, second]);
  assertNoPageErrors(withCookie, without);
});

test('with --demo the chart fills; screenshots at laptop and phone widths', async (t) => {
  const hub = await startHub(t, { dataDir: await tempDataDir(t), demo: true });
  const token = await demoToken(hub);
  const [desktop, phone, narrow] = await Promise.all([
    openPage(t, browser, hub.url, { viewport: { width: 1280, height: 800 } }),
    openPage(t, browser, hub.url, { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true }),
    openPage(t, browser, hub.url, { viewport: { width: 375, height: 667 }, isMobile: true }),
  ]);
  for (const page of [desktop, phone, narrow]) await waitForState(page, 'open', { hub });

  for (const page of [desktop, phone]) {
    await waitUntil(page, 'ten chart points', () => Number(document.querySelector('#chart').dataset.points) >= 10, null, { timeout: 30_000, hub });
    assert.equal(await page.isHidden('#chart-hint'), true);
  }
  // Something besides demo/random at the top of the logs: a typed update
  // over HTTP (the pages listen for its type first) and one from the form.
  for (const page of [desktop, phone]) {
    await page.fill('#types', 'chat');
    await page.press('#types', 'Enter');
  }
  const chat = await publish(hub, token, { topic: 'demo/chat', data: '{"user":"ada","text":"Shipping the dashboard today"}', type: 'chat' });
  await desktop.click('#pub-submit');
  await waitUntil(desktop, 'the publish result', () => document.querySelector('#publish-result').dataset.status === 'ok');
  const fromForm = await desktop.getAttribute('#publish-result', 'data-id');
  await waitForEvents(desktop, [chat, fromForm], { hub });
  await waitForEvents(phone, [chat, fromForm], { hub });
  assert.equal(await phone.getAttribute(`#log > li[data-id="${chat}"]`, 'data-type'), 'chat');
  for (const page of [desktop, phone, narrow]) {
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.equal(overflow, 0, `horizontal scroll at ${page.viewportSize().width} px`);
  }

  for (const page of [desktop, phone]) await page.evaluate(() => document.activeElement?.blur());
  await mkdir(ARTIFACTS, { recursive: true });
  const desktopPng = path.join(ARTIFACTS, 'dashboard.png');
  await desktop.screenshot({ path: desktopPng, fullPage: true, animations: 'disabled' });
  await phone.screenshot({ path: path.join(ARTIFACTS, 'dashboard-phone.png'), fullPage: true, animations: 'disabled' });
  if (process.env.TIDINGS_UPDATE_DOCS === '1') {
    await mkdir(path.join(REPO_ROOT, 'docs'), { recursive: true });
    await copyFile(desktopPng, path.join(REPO_ROOT, 'docs', 'dashboard.png'));
  }
  assertNoPageErrors(desktop, phone, narrow);
});

test('subscribes with Mercure draft-08 URL patterns when asked to', async (t) => {
  const hub = await startHub(t, { dataDir: await tempDataDir(t) });
  const page = await openPage(t, browser, hub.url);
  await waitForState(page, 'open', { hub });
  await page.fill('#topics', 'https://example.com/books/:id');
  await page.selectOption('#selector-kind', 'match_urlpattern');
  await page.click('#subscribe');
  await waitUntil(page, 'the draft-08 stream', () => document.querySelector('#state').textContent.trim() === 'open'
    && /Subscribed to https:\/\/example.com\/books\/:id/.test(document.body.textContent), undefined, { hub });
  const token = await demoToken(hub);
  await publish(hub, token, { topic: 'https://example.com/authors/1', data: 'not a book' });
  const id = await publish(hub, token, { topic: 'https://example.com/books/1', data: unique('a book') });
  await waitForEvents(page, [id], { hub });
  const ids = (await logEntries(page)).map((e) => e.id);
  assert.deepEqual(ids, [id], 'only the update the pattern matches');
  assertNoPageErrors(page);
});

test('two tabs of the dashboard share one connection and show who holds it', async (t) => {
  const hub = await startHub(t, { dataDir: await tempDataDir(t) });
  const context = await browser.newContext();
  t.after(() => context.close());
  // Without SharedWorker, so that a tab holds the connection and the page
  // says which (with one, both pages say "shared through a SharedWorker").
  await context.addInitScript(() => {
    delete window.SharedWorker;
  });
  const open = async () => {
    const page = await context.newPage();
    page.errors = [];
    page.on('pageerror', (error) => page.errors.push(`uncaught: ${error.message}`));
    await page.goto(hub.url);
    await waitForState(page, 'open', { hub });
    return page;
  };
  const first = await open();
  const second = await open();
  const sharing = (page) => page.getAttribute('#sharing', 'data-sharing');
  await waitUntil(second, 'the second tab follows', () => document.querySelector('#sharing').dataset.sharing === 'follower', undefined, { hub });
  assert.equal(await sharing(first), 'leader');
  assert.match(await second.textContent('#sharing'), /another tab/);
  // Each tab shows two streams (the log's and the chart's): two connections
  // for the two tabs, not four. (Waited for: the chart's may still be opening.)
  assert.equal(await untilSubscribers(hub, 2), 2, 'one connection per stream for two tabs');
  const token = await demoToken(hub);
  const id = await publish(hub, token, { topic: 'demo/chat', data: unique('to both tabs') });
  await waitForEvents(first, [id], { hub });
  await waitForEvents(second, [id], { hub });
  // The holding tab closes: the other takes over and says so.
  await first.close();
  await waitUntil(second, 'the second tab holds it', () => document.querySelector('#sharing').dataset.sharing === 'leader', undefined, { hub });
  const next = await publish(hub, token, { topic: 'demo/chat', data: unique('after the handover') });
  await waitForEvents(second, [next], { hub });
  assert.deepEqual(second.errors, []);
});
