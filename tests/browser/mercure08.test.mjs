// Mercure draft-08 in Debian's Chromium against the real hub, in the style of
// the Mercure conformance suite: a same-origin page subscribes anonymously
// with `match` and `match_urlpattern`; updates published with a draft-08
// token (at+jwt, iss, aud, authorization_details) arrive with their id and
// multi-line data, and non-matching and private ones do not.
//
// "Does not arrive" is checked by order: each stream also matches a marker
// topic, published after the update under test; the marker must be the
// first event the stream gets.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { launchBrowser, mintToken, openPage, startHub, tempDataDir, unique, waitUntil } from './support.mjs';

// The conformance suite's token: HS256, typ at+jwt, this issuer and audience,
// publish and subscribe on every topic.
const SECRET = '!ChangeThisMercureHubJWTSecretKey!';
const ISSUER = 'https://localhost';
const AUDIENCE = 'https://localhost/.well-known/mercure';

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(() => browser?.close());

function mintDraft08() {
  return mintToken(SECRET, '--draft', '08', '--issuer', ISSUER, '--audience', AUDIENCE,
    '--publish', '*', '--subscribe', '*', '--ttl', '600');
}

async function startStrictHub(t) {
  return startHub(t, {
    dataDir: await tempDataDir(t),
    extraArgs: ['--jwt-key', SECRET, '--anonymous', '--jwt-issuer', ISSUER, '--public-url', AUDIENCE, '--storage', 'memory'],
  });
}

/** Publishes; checks the answer is exactly 200 text/plain with the id. */
async function publish(hub, token, fields) {
  const body = new URLSearchParams();
  for (const [key, value] of fields) body.append(key, value);
  const response = await fetch(`${hub.url}/.well-known/mercure`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}` },
    body,
  });
  const text = await response.text();
  assert.equal(response.status, 200, `publish answered ${response.status}: ${text}`);
  assert.equal(response.headers.get('content-type'), 'text/plain; charset=utf-8');
  return text;
}

/** Opens an anonymous EventSource on `query` in the page, collecting what it gets. */
async function subscribe(page, query, hub) {
  await page.evaluate((query) => {
    window.got = [];
    window.source = new EventSource(`/.well-known/mercure?${query}`);
    window.source.onmessage = (event) => window.got.push({ id: event.lastEventId, data: event.data });
  }, query);
  await waitUntil(page, 'the stream open', () => window.source.readyState === EventSource.OPEN, undefined, { hub });
}

function firstEvent(page, hub) {
  return waitUntil(page, 'an event', () => window.got.length > 0, undefined, { hub }).then(() => page.evaluate(() => window.got[0]));
}

// Data with a blank line and leading spaces, as the conformance suite sends.
const DATA = 'first line\n\n   indented line';

const received = [
  ['a raw string', (r) => `match=${r}`, (r) => r],
  ['one of several selectors', (r) => `match=foo&match=${r}`, (r) => r],
  ['a URI', (r) => `match=${encodeURIComponent(`https://example.com/${r}`)}`, (r) => `https://example.com/${r}`],
  ['a URL pattern', () => `match_urlpattern=${encodeURIComponent('https://example.net/foo/:random')}`, (r) => `https://example.net/foo/${r}`],
];

for (const [what, query, topic] of received) {
  test(`an update on ${what} arrives with its id and multi-line data`, async (t) => {
    const hub = await startStrictHub(t);
    const token = mintDraft08();
    const page = await openPage(t, browser, `${hub.url}/healthz`);
    const random = unique('r').replace(/\W/g, '');
    await subscribe(page, query(random), hub);
    const id = `id-${JSON.stringify([topic(random)])}`;
    assert.equal(await publish(hub, token, [['topic', topic(random)], ['data', DATA], ['id', id]]), id);
    assert.deepEqual(await firstEvent(page, hub), { id, data: DATA });
    assert.deepEqual(page.errors.filter((e) => !e.includes('/favicon.ico')), []);
  });
}

const refused = [
  ['a non-matching raw string', (r) => `match=${r}`, (r) => `${r}-other`, false],
  ['a non-matching URI', (r) => `match=${encodeURIComponent(`https://example.com/${r}`)}`, (r) => `https://example.com/${r}/other`, false],
  ['a non-matching URL pattern', () => `match_urlpattern=${encodeURIComponent('https://example.net/bar/:var')}`, (r) => `https://example.net/foo/${r}`, false],
  ['a private raw string', (r) => `match=${r}`, (r) => r, true],
  ['a private URI', (r) => `match=${encodeURIComponent(`https://example.com/${r}`)}`, (r) => `https://example.com/${r}`, true],
  ['a private URL pattern', () => `match_urlpattern=${encodeURIComponent('https://example.net/foo/:random')}`, (r) => `https://example.net/foo/${r}`, true],
];

for (const [what, query, topic, isPrivate] of refused) {
  test(`an update on ${what} does not arrive`, async (t) => {
    const hub = await startStrictHub(t);
    const token = mintDraft08();
    const page = await openPage(t, browser, `${hub.url}/healthz`);
    const random = unique('r').replace(/\W/g, '');
    const marker = `marker-${random}`;
    await subscribe(page, `${query(random)}&match=${marker}`, hub);
    const fields = [['topic', topic(random)], ['data', DATA]];
    if (isPrivate) fields.push(['private', 'on']);
    await publish(hub, token, fields);
    const markerId = await publish(hub, token, [['topic', marker], ['data', 'marker']]);
    assert.deepEqual(await firstEvent(page, hub), { id: markerId, data: 'marker' });
    assert.deepEqual(page.errors.filter((e) => !e.includes('/favicon.ico')), []);
  });
}
