// What the dashboard tests share: the real hub binary (started, killed,
// restarted on the same port), publishing over plain HTTP, Debian's Chromium
// through playwright-core, and waiting for DOM states instead of sleeping.

import { execFileSync, spawn } from 'node:child_process';
import https from 'node:https';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));

/** The hub binary: $TIDINGS_BIN (relative to the working directory), else the workspace's debug build. */
export const TIDINGS_BIN = process.env.TIDINGS_BIN ? path.resolve(process.env.TIDINGS_BIN) : path.resolve(here, '../../target/debug/tidings');
/** Debian's Chromium; never a browser downloaded by a tool. */
export const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
export const ARTIFACTS = path.join(here, 'artifacts');
export const REPO_ROOT = path.resolve(here, '../..');

/** How long any expected state may take to show. Generous: CI machines are small. */
export const WAIT_MS = 20_000;

const running = new Set();
// A last resort if the runner dies between a spawn and its cleanup.
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** A fresh, empty data directory, removed when the test ends. */
export async function tempDataDir(t) {
  const dir = await mkdtemp(path.join(tmpdir(), 'tidings-browser-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Starts `tidings serve` on `port` (0: any free port) and resolves once the
 * banner names the address. The returned hub is killed when the test ends,
 * whatever happens.
 */
export function startHub(t, { dataDir, port = 0, demo = false, extraArgs = [] }) {
  const args = ['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, ...extraArgs];
  if (demo) args.push('--demo');
  return startServer(t, { command: TIDINGS_BIN, args, banner: /^Tidings hub listening on (https?:\/\/\S+)/ });
}

/**
 * Starts a program that serves HTTP and resolves once a line of its standard
 * output matches `banner`, whose first group is the URL it listens on. The
 * program is killed when the test ends, whatever happens; its last lines of
 * output are in `log`, for failure messages.
 */
export async function startServer(t, { command, args = [], env = {}, banner }) {
  const child = spawn(command, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'info', NO_COLOR: '1', ...env },
  });
  running.add(child);
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    });
  });
  const hub = { child, exited, log: [], url: '', port: 0 };
  t.after(() => stopHub(hub));
  // Keep the last lines of the program's log for failure messages; reading
  // both pipes also keeps it from blocking on a full pipe.
  const keep = (line) => {
    hub.log.push(line);
    if (hub.log.length > 200) hub.log.shift();
  };
  createInterface({ input: child.stderr }).on('line', keep);
  const stdout = createInterface({ input: child.stdout });
  const name = path.basename(command);
  hub.url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} printed no banner within 15 s:\n${hub.log.join('\n')}`)), 15_000);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${command}: ${error.message} (build it, or set TIDINGS_BIN)`));
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code ?? signal}) before listening:\n${hub.log.join('\n')}`));
    });
    stdout.on('line', (line) => {
      keep(line);
      const match = banner.exec(line);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
  });
  hub.port = Number(new URL(hub.url).port);
  return hub;
}

/** Kills the hub (SIGKILL: no graceful shutdown) and waits until it is gone. */
export async function stopHub(hub, signal = 'SIGKILL') {
  if (hub.child.exitCode === null && hub.child.signalCode === null) hub.child.kill(signal);
  return hub.exited;
}

/** A token from the development-mode endpoint (publish and subscribe `*`). */
export async function demoToken(hub) {
  const response = await fetch(`${hub.url}/demo/token`);
  if (response.status !== 200) throw new Error(`GET /demo/token answered ${response.status}: ${await response.text()}`);
  const body = await response.json();
  if (typeof body.token !== 'string' || !(body.expiresIn > 0)) throw new Error(`unexpected /demo/token body: ${JSON.stringify(body)}`);
  return body.token;
}

/**
 * Publishes form-encoded fields over HTTPS to a hub with a development
 * (self-signed) certificate, which Node's fetch would refuse.
 */
export function publishTls(hub, token, fields) {
  const body = new URLSearchParams();
  for (const [key, value] of Object.entries(fields)) body.append(key, String(value));
  return new Promise((resolve, reject) => {
    const request = https.request(
      `${hub.url}/.well-known/mercure`,
      {
        method: 'POST',
        rejectUnauthorized: false,
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/x-www-form-urlencoded' },
      },
      (response) => {
        let text = '';
        response.on('data', (chunk) => (text += chunk));
        response.on('end', () => (response.statusCode === 200 ? resolve(text.trim()) : reject(new Error(`publish answered ${response.statusCode}: ${text}`))));
      },
    );
    request.on('error', reject);
    request.end(body.toString());
  });
}

/** A token from /demo/token of a hub with a development certificate. */
export function demoTokenTls(hub) {
  return new Promise((resolve, reject) => {
    https
      .get(`${hub.url}/demo/token`, { rejectUnauthorized: false }, (response) => {
        let text = '';
        response.on('data', (chunk) => (text += chunk));
        response.on('end', () => {
          try {
            resolve(JSON.parse(text).token);
          } catch (error) {
            reject(error);
          }
        });
      })
      .on('error', reject);
  });
}

/** Publishes form-encoded fields over plain HTTP; resolves with the id the hub answered. */
export async function publish(hub, token, fields) {
  const body = new URLSearchParams();
  for (const [key, value] of Object.entries(fields)) body.append(key, String(value));
  const response = await fetch(`${hub.url}/.well-known/mercure`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}` },
    body,
  });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`publish answered ${response.status}: ${text}`);
  return text.trim();
}

export function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 60_000,
  });
}

/**
 * A new browser context (its own cookies), closed when the test ends, and a
 * page in it whose console errors and uncaught exceptions are collected in
 * `page.errors`.
 */
export async function openPage(t, browser, url, contextOptions = {}, setup = async () => {}) {
  const context = await browser.newContext(contextOptions);
  t.after(() => context.close());
  await setup(context);
  const page = await context.newPage();
  page.errors = [];
  page.on('console', (message) => {
    if (message.type() === 'error') page.errors.push(`console error: ${message.text()} (${message.location().url})`);
  });
  page.on('pageerror', (error) => page.errors.push(`uncaught: ${error.message}`));
  page.setDefaultTimeout(WAIT_MS);
  await page.goto(url);
  return page;
}

/** What the dashboard shows, for failure messages. */
export function snapshot(page) {
  return page.evaluate(() => ({
    state: document.querySelector('#state')?.textContent,
    reconnects: document.querySelector('#reconnects')?.textContent,
    lastEventId: document.querySelector('#last-event-id')?.textContent,
    note: document.querySelector('#stream-note')?.textContent,
    log: [...document.querySelectorAll('#log > li')].slice(0, 12).map((li) => `${li.dataset.type} ${li.dataset.id} ${li.querySelector('.ev-data')?.textContent}`),
  })).catch((error) => ({ unavailable: error.message }));
}

/**
 * Waits until `predicate` (run in the page with `arg`) is truthy; on timeout
 * fails with `what` and what the page and hub showed.
 */
export async function waitUntil(page, what, predicate, arg, { timeout = WAIT_MS, hub } = {}) {
  try {
    await page.waitForFunction(predicate, arg, { timeout, polling: 50 });
  } catch (error) {
    const shown = JSON.stringify(await snapshot(page), null, 2);
    const hubLog = hub ? `\nhub log (last lines):\n${hub.log.slice(-15).join('\n')}` : '';
    throw new Error(`timed out after ${timeout} ms waiting for ${what}\npage shows: ${shown}${hubLog}\n(${error.message.split('\n')[0]})`);
  }
}

export function waitForState(page, state, options) {
  return waitUntil(page, `connection state "${state}"`, (s) => document.querySelector('#state')?.textContent === s, state, options);
}

/** Waits until the log holds an entry for every id given. */
export function waitForEvents(page, ids, options) {
  return waitUntil(
    page,
    `log entries ${ids.join(', ')}`,
    (wanted) => {
      const seen = new Set([...document.querySelectorAll('#log > li')].map((li) => li.dataset.id));
      return wanted.every((id) => seen.has(id));
    },
    ids,
    options,
  );
}

/** The log as [{id, type, data}], oldest first. */
export async function logEntries(page) {
  const entries = await page.$$eval('#log > li', (items) =>
    items.map((li) => ({ id: li.dataset.id, type: li.dataset.type, data: li.querySelector('.ev-data').textContent })),
  );
  return entries.reverse();
}

/** Fails if any id occurs more than once in the page's log. */
export function duplicates(entries) {
  const counts = new Map();
  for (const { id } of entries) counts.set(id, (counts.get(id) ?? 0) + 1);
  return [...counts].filter(([, n]) => n > 1).map(([id, n]) => `${id} ×${n}`);
}

export function unique(label) {
  return `${label}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/** A token minted by `tidings token --key KEY ARGS…`. */
export function mintToken(key, ...args) {
  return execFileSync(TIDINGS_BIN, ['token', '--key', key, ...args], { encoding: 'utf8' }).trim();
}

/** The hub's `tidings_subscribers` gauge: the subscriber connections it holds. */
export async function subscriberCount(hub) {
  const text = await (await fetch(`${hub.url}/metrics`)).text();
  return Number(/^tidings_subscribers (\d+)/m.exec(text)?.[1]);
}

/**
 * The subscriber count once it is `n`, or what it is after WAIT_MS: a
 * connection closed by a page goes when the hub sees its socket close.
 */
export async function untilSubscribers(hub, n) {
  const deadline = Date.now() + WAIT_MS;
  while ((await subscriberCount(hub)) !== n && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return subscriberCount(hub);
}
