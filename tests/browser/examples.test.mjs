// The examples (examples/), run as their headers say: each app on a free
// port with its page in real Chromium (the job and the answer reloaded in
// the middle), the Node and curl publishers and the Rust subscriber against
// the real hub. run.sh builds the examples; TIDINGS_EXAMPLES_DIR may name
// where they are.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';

import { StreamParser } from '../../clients/js/tidings.js';
import { REPO_ROOT, WAIT_MS, launchBrowser, mintToken, openPage, publish, startHub, startServer, stopHub, tempDataDir, untilSubscribers, waitUntil } from './support.mjs';

const EXAMPLES_DIR = path.resolve(process.env.TIDINGS_EXAMPLES_DIR ?? path.join(REPO_ROOT, 'target/debug/examples'));
const KEY = 'examples-test-key-of-at-least-32-bytes';

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(() => browser?.close());

/** An example app, as its header says, on a free port. */
function startExample(t, name) {
  return startServer(t, {
    command: path.join(EXAMPLES_DIR, name),
    env: { LISTEN: '127.0.0.1:0' },
    banner: /^listening on (http:\/\/\S+)/,
  });
}

/** A hub with a key (publishers need a token) that lets anyone subscribe. */
async function startKeyedHub(t) {
  return startHub(t, { dataDir: await tempDataDir(t), extraArgs: ['--jwt-key', KEY, '--anonymous'] });
}

/** Fails the test if the page logged an error or threw. */
function assertNoPageErrors(page) {
  assert.deepEqual(page.errors, [], 'the page logged errors');
}

/** SIGINT (Ctrl-C), as a user stops an example; resolves with how it exited. */
async function interrupt(program) {
  const timer = setTimeout(() => program.child.kill('SIGKILL'), WAIT_MS);
  const exited = await stopHub(program, 'SIGINT');
  clearTimeout(timer);
  return exited;
}

/**
 * Reads a text/event-stream with fetch until `enough(events)` says so;
 * events are {type, data, lastEventId}, parsed by tidings.js's StreamParser.
 */
async function readEvents(url, enough) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error(`no end of the stream within ${WAIT_MS} ms`)), WAIT_MS);
  const events = [];
  const parser = new StreamParser((event) => events.push(event));
  try {
    const response = await fetch(url, { signal: controller.signal });
    if (response.status !== 200) throw new Error(`the hub answered ${response.status}: ${await response.text()}`);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    while (!enough(events)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the stream ended after ${events.length} events`);
      parser.feed(value);
    }
    return events;
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
}

/**
 * Runs a program to its end (killed after WAIT_MS); resolves with its exit
 * code and output.
 */
function run(command, args, env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), WAIT_MS);
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? signal, stdout, stderr });
    });
  });
}

/**
 * Reloads the page and returns the `lastEventID` its stream asked for after
 * the reload, with the id the page had saved for `key` when it went away
 * (noted at pagehide: events keep coming until then).
 */
async function reloadAndResume(page, key) {
  await page.evaluate((k) => {
    addEventListener('pagehide', () => sessionStorage.setItem('test:saved-at-unload', JSON.parse(sessionStorage.getItem(k)).lastEventId));
  }, key);
  const resumed = page.waitForRequest((request) => request.url().includes('/.well-known/mercure?'));
  await page.reload();
  const asked = new URL((await resumed).url()).searchParams.get('lastEventID');
  const saved = await page.evaluate(() => sessionStorage.getItem('test:saved-at-unload'));
  return { saved, asked };
}

test('1, embed the hub in an axum app: a handler and a background task publish, every page receives', async (t) => {
  const app = await startExample(t, 'embed-axum');
  const first = await openPage(t, browser, `${app.url}/`);
  const second = await openPage(t, browser, `${app.url}/`);
  // The background task's clock reaches both pages.
  for (const page of [first, second]) {
    await waitUntil(page, 'the clock', () => document.querySelector('#clock').textContent !== 'waiting…');
  }
  // A shout from one page goes through the app's own handler to both.
  await first.fill('input[name=text]', 'hello from the first page');
  await first.click('button');
  for (const page of [first, second]) {
    await waitUntil(page, 'the shout', () => document.querySelector('#shouts li')?.textContent === 'hello from the first page');
  }
  // The app's handler refuses what it should, and the hub's routes are mounted.
  const refused = await fetch(`${app.url}/shout`, { method: 'POST', body: new URLSearchParams({ text: '  ' }) });
  assert.equal(refused.status, 400);
  assert.equal((await fetch(`${app.url}/tidings.js`)).status, 200);
  assertNoPageErrors(first);
  assertNoPageErrors(second);
  // Ctrl-C with both pages' streams open: the hub ends them and the app exits.
  assert.deepEqual(await interrupt(app), { code: 0, signal: null }, app.log.join('\n'));
});

test('2, live random numbers: a JSON {timestamp, value} a second on the page', async (t) => {
  const app = await startExample(t, 'random-numbers');
  const page = await openPage(t, browser, `${app.url}/`);
  await waitUntil(page, 'three numbers', () => document.querySelectorAll('#numbers tr').length >= 3, null, { hub: app });
  const rows = await page.$$eval('#numbers tr', (trs) => trs.map((tr) => ({ timestamp: Number(tr.dataset.timestamp), value: Number(tr.dataset.value) })));
  for (const { value } of rows) assert.ok(value >= 0 && value < 1, `value ${value}`);
  // Newest first, a second apart (or more, on a stalled machine).
  for (let i = 1; i < rows.length; i++) {
    const gap = rows[i - 1].timestamp - rows[i].timestamp;
    assert.ok(gap >= 950 && gap < 10_000, `timestamps ${rows[i - 1].timestamp} then ${rows[i].timestamp}`);
  }
  assert.equal(await page.textContent('#latest'), rows[0].value.toFixed(4));
  assertNoPageErrors(page);
});

test('3, progress of a long job: a reload mid-job resumes by Last-Event-ID, no step lost or doubled', async (t) => {
  const app = await startExample(t, 'job-progress');
  const page = await openPage(t, browser, `${app.url}/`);
  await page.click('#start');
  await waitUntil(page, 'three steps', () => document.querySelectorAll('#steps li').length >= 3, null, { hub: app });
  const before = await page.$$eval('#steps li', (items) => items.length);
  const job = new URLSearchParams(new URL(page.url()).hash.slice(1)).get('job');
  const { saved, asked } = await reloadAndResume(page, `job:${job}`);
  assert.match(saved, /^urn:uuid:/);
  assert.equal(asked, saved, 'the reloaded page resumes after the last event it showed');
  // The reload came mid-job, and the page shows where it was at once.
  assert.equal(await page.getAttribute('body', 'data-state'), 'running');
  assert.ok((await page.$$eval('#steps li', (items) => items.length)) >= before);
  await waitUntil(page, 'the result', () => document.body.dataset.state === 'done', null, { hub: app });
  const steps = await page.$$eval('#steps li', (items) => items.map((li) => li.textContent));
  assert.deepEqual(
    steps.map((message) => /^chunk (\d+) of 10/.exec(message)?.[1]),
    ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10'],
    steps.join('\n'),
  );
  assert.equal(await page.getAttribute('#bar', 'value'), '100');
  assert.equal(await page.textContent('#result'), '5500 records imported');
  assertNoPageErrors(page);
});

test('4, streamed answer: a reload mid-answer resumes after its last token, a second tab shows the same text', async (t) => {
  const app = await startExample(t, 'ai-answer');
  const first = await openPage(t, browser, `${app.url}/`);
  await first.click('button');
  await waitUntil(first, 'some tokens', () => document.querySelector('#answer').textContent.split(' ').length >= 8, null, { hub: app });
  const link = first.url();
  const { answer, topic } = Object.fromEntries(new URLSearchParams(new URL(link).hash.slice(1)));
  // A second tab (another context: nothing saved) on the same answer.
  const second = await openPage(t, browser, link);
  const { saved, asked } = await reloadAndResume(first, `answer:${answer}`);
  assert.match(saved, /^urn:uuid:/);
  assert.equal(asked, saved, 'the reloaded page resumes after the last token it showed');
  assert.equal(await first.getAttribute('body', 'data-state'), 'streaming', 'the reload came mid-answer');
  for (const page of [first, second]) {
    await waitUntil(page, 'the whole answer', () => document.body.dataset.state === 'done', null, { hub: app, timeout: 2 * WAIT_MS });
  }
  // The answer as the hub holds it, token by token, from its first.
  const query = new URLSearchParams({ topic, lastEventID: 'earliest' });
  const events = await readEvents(`${app.url}/.well-known/mercure?${query}`, (seen) => seen.at(-1)?.type === 'done');
  const tokens = events.filter((event) => event.type === 'token');
  const whole = tokens.map((event) => event.data).join('');
  assert.ok(whole.startsWith('You asked: \u201cWhat is Server-Sent Events?\u201d. Here is'), whole);
  assert.equal(JSON.parse(events.at(-1).data).tokens, tokens.length);
  for (const page of [first, second]) {
    assert.equal(await page.textContent('#answer'), whole);
    assert.equal(await page.textContent('#status'), `${tokens.length} tokens`);
  }
  const refused = await fetch(`${app.url}/answers`, { method: 'POST', body: new URLSearchParams({ question: '' }) });
  assert.equal(refused.status, 400);
  assertNoPageErrors(first);
  assertNoPageErrors(second);
});

test('5, publish from another stack: the Node script and the curl line reach subscribers', async (t) => {
  const hub = await startKeyedHub(t);
  const token = mintToken(KEY, '--publish', '*');
  const endpoint = `${hub.url}/.well-known/mercure`;
  const env = { TIDINGS_URL: endpoint, TIDINGS_TOKEN: token, TOPIC: 'numbers' };
  const received = readEvents(`${endpoint}?topic=numbers`, (events) => events.length === 4);
  // The subscription is open before anything is published.
  assert.equal(await untilSubscribers(hub, 1), 1);
  const node = await run('node', [path.join(REPO_ROOT, 'examples/publish-from-node/publish.mjs')], { ...env, COUNT: '3', INTERVAL_MS: '20' });
  assert.equal(node.code, 0, node.stderr);
  const curl = await run(path.join(REPO_ROOT, 'examples/publish-from-node/publish.sh'), ['from curl'], env);
  assert.equal(curl.code, 0, curl.stderr);
  const events = await received;
  const published = node.stdout.trim().split('\n').map((line) => line.split(' '));
  assert.deepEqual(
    events.map((event) => [event.lastEventId, event.data]),
    [...published, [curl.stdout.trim(), 'from curl']],
  );
  for (const [, data] of published) {
    const { timestamp, value } = JSON.parse(data);
    assert.ok(timestamp > 0 && value >= 0 && value < 1, data);
  }
  // A refused token is said, with the hub's reason, and fails the run.
  const badNode = await run('node', [path.join(REPO_ROOT, 'examples/publish-from-node/publish.mjs')], { ...env, TIDINGS_TOKEN: 'not-a-token', COUNT: '1' });
  assert.equal(badNode.code, 1);
  assert.match(badNode.stderr, /the hub answered 401: .*token/);
  const badCurl = await run(path.join(REPO_ROOT, 'examples/publish-from-node/publish.sh'), ['x'], { ...env, TIDINGS_TOKEN: 'not-a-token' });
  assert.notEqual(badCurl.code, 0);
  assert.match(badCurl.stdout + badCurl.stderr, /401/);
});

/** The Rust subscriber example, its output lines collected as they come. */
function startSubscriber(t, endpoint, state) {
  const child = spawn(path.join(EXAMPLES_DIR, 'rust-subscriber'), [endpoint, 'feed', '--state', state], { stdio: ['ignore', 'pipe', 'pipe'] });
  const program = { child, lines: [], log: [], exited: new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal }))) };
  createInterface({ input: child.stdout }).on('line', (line) => program.lines.push(line));
  createInterface({ input: child.stderr }).on('line', (line) => program.log.push(line));
  t.after(() => stopHub(program));
  return program;
}

async function until(what, condition, program) {
  const deadline = Date.now() + WAIT_MS;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; stderr:\n${program.log.join('\n')}\nstdout:\n${program.lines.join('\n')}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test('6, Rust subscriber: prints each event, and after a restart resumes from its saved Last-Event-ID', async (t) => {
  const hub = await startKeyedHub(t);
  const token = mintToken(KEY, '--publish', '*');
  const endpoint = `${hub.url}/.well-known/mercure`;
  const state = path.join(await tempDataDir(t), 'last-event-id');
  const post = (data) => publish(hub, token, { topic: 'feed', data });

  const first = startSubscriber(t, endpoint, state);
  await until('the connection', () => first.log.some((line) => line.startsWith('connected to')), first);
  const ids = [await post('one'), await post('two\nlines'), await post('three')];
  await until('three events', () => first.lines.length === 3, first);
  assert.deepEqual(first.lines, [`${ids[0]}\tmessage\tone`, `${ids[1]}\tmessage\ttwo\\nlines`, `${ids[2]}\tmessage\tthree`]);
  assert.deepEqual(await interrupt(first), { code: 0, signal: null });
  assert.equal((await readFile(state, 'utf8')).trim(), ids[2]);

  // Published while it is down: the restart prints these, and only these.
  ids.push(await post('four'), await post('five'));
  const second = startSubscriber(t, endpoint, state);
  await until('the two missed events', () => second.lines.length === 2, second);
  assert.deepEqual(second.lines, [`${ids[3]}\tmessage\tfour`, `${ids[4]}\tmessage\tfive`]);
  assert.ok(second.log.includes(`resuming after ${ids[2]}`), second.log.join('\n'));
  ids.push(await post('six'));
  await until('the live event', () => second.lines.length === 3, second);
  assert.equal(second.lines[2], `${ids[5]}\tmessage\tsix`);
  assert.deepEqual(await interrupt(second), { code: 0, signal: null });
});
