// Why HTTPS matters to EventSource, in Debian's Chromium against the real
// hub: over HTTP/1.1 a browser holds 6 connections per origin, so a 7th
// EventSource waits; over HTTP/2 (which browsers speak only over TLS) every
// stream of the origin shares one connection.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { demoToken, demoTokenTls, launchBrowser, openPage, publish, publishTls, startHub, tempDataDir, unique, waitUntil } from './support.mjs';

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(() => browser?.close());

/**
 * The page's errors, but for the favicon the browser asks for beside
 * /healthz (which has none): the page is a plain same-origin document.
 */
function pageErrors(page) {
  return page.errors.filter((e) => !e.includes('/favicon.ico'));
}

/** Opens `n` EventSources on `topic` in the page; counts what each receives. */
async function openStreams(page, topic, n) {
  await page.evaluate(
    ({ topic, n }) => {
      window.streams = [];
      for (let i = 0; i < n; i += 1) {
        const source = new EventSource(`/.well-known/mercure?topic=${encodeURIComponent(topic)}`);
        const stream = { source, received: [] };
        source.onmessage = (event) => stream.received.push(event.data);
        window.streams.push(stream);
      }
    },
    { topic, n },
  );
}

/** How many of the page's streams are open, connecting, and have `data`. */
function counts(page, data) {
  return page.evaluate((data) => ({
    open: window.streams.filter((s) => s.source.readyState === EventSource.OPEN).length,
    connecting: window.streams.filter((s) => s.source.readyState === EventSource.CONNECTING).length,
    received: window.streams.filter((s) => s.received.includes(data)).length,
  }), data);
}

function untilOpen(page, n, hub) {
  return waitUntil(page, `${n} open streams`, (n) => window.streams.filter((s) => s.source.readyState === EventSource.OPEN).length >= n, n, { hub });
}

function untilReceived(page, data, n, hub) {
  return waitUntil(page, `${n} streams with ${data}`, ({ data, n }) => window.streams.filter((s) => s.received.includes(data)).length >= n, { data, n }, { hub });
}

test('over HTTPS ten EventSources of one page all receive the next update, over HTTP/2', async (t) => {
  const hub = await startHub(t, { dataDir: await tempDataDir(t), extraArgs: ['--tls-self-signed'] });
  assert.match(hub.url, /^https:/);
  const page = await openPage(t, browser, `${hub.url}/healthz`, { ignoreHTTPSErrors: true });
  const protocol = await page.evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol);
  assert.equal(protocol, 'h2', 'the page came over HTTP/2');
  const topic = unique('h2');
  await openStreams(page, topic, 10);
  await untilOpen(page, 10, hub);
  const data = unique('next');
  await publishTls(hub, await demoTokenTls(hub), { topic, data });
  await untilReceived(page, data, 10, hub);
  assert.deepEqual(await counts(page, data), { open: 10, connecting: 0, received: 10 });
  const metrics = await page.evaluate(async () => (await fetch('/metrics')).text());
  const counted = metrics.split('\n').find((line) => line.startsWith('tidings_http2_connections_total'));
  assert.ok(counted, `the hub counts HTTP/2 connections:\n${metrics}`);
  // This fetch's own connection is among them (it is the page's).
  const connections = Number(counted.split(' ').pop());
  assert.ok(connections >= 1 && connections < 10, `10 streams shared ${connections} HTTP/2 connection(s)`);
  assert.deepEqual(pageErrors(page), []);
});

test('over plain HTTP/1.1 the same page stalls at six streams', async (t) => {
  const hub = await startHub(t, { dataDir: await tempDataDir(t) });
  const page = await openPage(t, browser, `${hub.url}/healthz`);
  const protocol = await page.evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol);
  assert.equal(protocol, 'http/1.1');
  const topic = unique('h1');
  await openStreams(page, topic, 10);
  await untilOpen(page, 6, hub);
  const data = unique('next');
  await publish(hub, await demoToken(hub), { topic, data });
  await untilReceived(page, data, 6, hub);
  // Six connections are the origin's limit: the other four are still
  // waiting for one of them to close, so they have received nothing.
  assert.deepEqual(await counts(page, data), { open: 6, connecting: 4, received: 6 });
  assert.deepEqual(pageErrors(page), []);
});

test('over HTTPS three tabs with four streams each all receive', async (t) => {
  const hub = await startHub(t, { dataDir: await tempDataDir(t), extraArgs: ['--tls-self-signed'] });
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  t.after(() => context.close());
  const topic = unique('tabs');
  const tabs = [];
  for (let i = 0; i < 3; i += 1) {
    const tab = await context.newPage();
    tab.setDefaultTimeout(20_000);
    await tab.goto(`${hub.url}/healthz`);
    await openStreams(tab, topic, 4);
    tabs.push(tab);
  }
  for (const tab of tabs) await untilOpen(tab, 4, hub);
  const data = unique('all');
  await publishTls(hub, await demoTokenTls(hub), { topic, data });
  for (const tab of tabs) {
    await untilReceived(tab, data, 4, hub);
    assert.deepEqual(await counts(tab, data), { open: 4, connecting: 0, received: 4 });
  }
});
