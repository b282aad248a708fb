// tidings.js: the browser's EventSource interface, with request headers,
// tunable reconnection and (later) one connection shared by every tab.
// No dependencies; an ES module. API: clients/js/README.md.

const CONNECTING = 0;
const OPEN = 1;
const CLOSED = 2;

/**
 * An incremental parser of `text/event-stream`, exactly as WHATWG HTML's
 * "interpreting an event stream" says (the rules of `tidings-codec`): lines
 * end in CR, LF or CRLF; `:` starts a comment; `data` lines join with LF; an
 * `id` with NUL is ignored; `retry` takes ASCII digits only; a blank line
 * dispatches, and an event with no data is not dispatched. Feed it decoded
 * text (a streaming `TextDecoder` strips the BOM and replaces bad UTF-8).
 */
export class StreamParser {
  /**
   * @param {(event: {type: string, data: string, lastEventId: string}) => void} onEvent
   * @param {(ms: number) => void} onRetry
   */
  constructor(onEvent, onRetry = () => {}) {
    this.onEvent = onEvent;
    this.onRetry = onRetry;
    this.lastEventId = '';
    this.reset();
  }

  /** A new connection: what was half received is discarded; the last id stays. */
  reset() {
    this.line = '';
    this.afterCR = false;
    this.data = '';
    this.eventType = '';
    this.idBuffer = this.lastEventId;
  }

  /** @param {string} text */
  feed(text) {
    let start = 0;
    for (let i = 0; i < text.length; i += 1) {
      const c = text.charCodeAt(i);
      if (c === 10 && this.afterCR) {
        // The LF of a CRLF whose CR ended the line already.
        this.afterCR = false;
        start = i + 1;
        continue;
      }
      this.afterCR = false;
      if (c === 10 || c === 13) {
        this.line += text.slice(start, i);
        this.#processLine(this.line);
        this.line = '';
        this.afterCR = c === 13;
        start = i + 1;
      }
    }
    this.line += text.slice(start);
  }

  #processLine(line) {
    if (line === '') {
      this.#dispatch();
      return;
    }
    if (line.charCodeAt(0) === 58) return; // a comment
    const colon = line.indexOf(':');
    let field = line;
    let value = '';
    if (colon >= 0) {
      field = line.slice(0, colon);
      value = line.slice(colon + 1);
      if (value.charCodeAt(0) === 32) value = value.slice(1);
    }
    switch (field) {
      case 'event':
        this.eventType = value;
        break;
      case 'data':
        this.data += `${value}\n`;
        break;
      case 'id':
        if (!value.includes('\0')) this.idBuffer = value;
        break;
      case 'retry':
        if (/^[0-9]+$/.test(value)) this.onRetry(Number(value));
        break;
      default:
        break;
    }
  }

  #dispatch() {
    this.lastEventId = this.idBuffer;
    if (this.data === '') {
      this.eventType = '';
      return;
    }
    const data = this.data.endsWith('\n') ? this.data.slice(0, -1) : this.data;
    const type = this.eventType || 'message';
    this.data = '';
    this.eventType = '';
    this.onEvent({ type, data, lastEventId: this.lastEventId });
  }
}

/** What an `error` event carries when the hub refused the stream. */
export class StreamError extends Event {
  constructor(status, message) {
    super('error');
    /** The HTTP status (0 for a network error or a timeout). */
    this.status = status;
    /** The hub's message, or what went wrong. */
    this.message = message;
  }
}

const DEFAULTS = { retry: 1000, maxRetry: 30_000, readTimeout: 0 };

/**
 * The WHATWG `EventSource` interface, with options:
 * - `headers`, `method`, `body`: sent with `fetch` and a streaming body
 *   (the native object cannot); without them and without `readTimeout`,
 *   the browser's own `EventSource` carries the stream (`transport: 'fetch'`
 *   or `'native'` chooses);
 * - `retry`: the first reconnection delay in ms (default 1000; a `retry:`
 *   field of the stream replaces it), doubled with jitter at each failure
 *   up to `maxRetry` (default 30 000), back to the first after a stream that
 *   delivered an event;
 * - `lastEventId`: where to start; `readTimeout`: reconnect when nothing,
 *   not even a keep-alive comment, arrived for that many ms;
 * - `withCredentials`, as the native option.
 *
 * A 401, 403, 404, another non-2xx status but 429 and 5xx, or a content
 * type other than `text/event-stream` closes the stream for good with an
 * `error` event (a `StreamError`) that carries the status and the hub's
 * message; 204 closes it too. Network errors, 429 and 5xx reconnect.
 */
export class EventSource extends EventTarget {
  static CONNECTING = CONNECTING;
  static OPEN = OPEN;
  static CLOSED = CLOSED;

  /** @param {string | URL} url */
  constructor(url, options = {}) {
    super();
    this.url = new URL(url, globalThis.location?.href).href;
    this.withCredentials = Boolean(options.withCredentials);
    this.readyState = CONNECTING;
    this.onopen = null;
    this.onmessage = null;
    this.onerror = null;
    this.#options = { ...DEFAULTS, ...options };
    this.#delay = this.#options.retry;
    this.#parser = new StreamParser(
      (event) => this.#deliver(event),
      (ms) => {
        this.#options.retry = ms;
        this.#delay = ms;
      },
    );
    this.#parser.lastEventId = options.lastEventId ?? '';
    this.#parser.reset();
    if (options.shared && typeof SharedWorker === 'function' && WORKER_URL) {
      // A SharedWorker holds the one connection: it outlives any one tab,
      // so no tab's closing hands anything over.
      this.#startWorker();
      return;
    }
    if (options.shared && typeof BroadcastChannel === 'function' && globalThis.navigator?.locks) {
      // No SharedWorker (Chrome on Android, for one): a leader tab holds it.
      this.#startShared();
      return;
    }
    // Anything the browser's object cannot do needs the fetch transport.
    const custom = Boolean(options.headers || options.method || options.body || options.readTimeout)
      || options.retry !== undefined || options.maxRetry !== undefined;
    const transport = options.transport ?? (custom ? 'fetch' : 'native');
    if (transport === 'native' && typeof globalThis.EventSource === 'function' && !custom) {
      this.#openNative();
    } else {
      this.#connect();
    }
  }

  #options;
  #delay;
  #parser;
  #abort = null;
  #timer = 0;
  #native = null;
  #types = new Set();
  #delivered = false;

  /** The id of the last event received (where a reconnection resumes). */
  get lastEventId() {
    return this.#parser.lastEventId;
  }

  close() {
    this.readyState = CLOSED;
    clearTimeout(this.#timer);
    this.#abort?.abort();
    this.#native?.close();
    if (this.#port) {
      this.#leave?.();
      this.#port.close();
    }
    if (this.#shared) {
      this.#shared.inner?.close();
      this.#shared.lockRequest.abort();
      this.#shared.release?.();
      this.#shared.channel.close();
    }
  }

  /** With `shared: true`: whether this tab holds the connection for all. */
  get isLeader() {
    return Boolean(this.#shared?.inner);
  }

  /**
   * Who holds the connection: `leader` (this tab, for the tabs sharing it),
   * `follower` (another tab), `worker` (a SharedWorker) or `own` (not shared).
   */
  get sharing() {
    if (this.#port) return 'worker';
    if (this.#shared) return this.#shared.inner ? 'leader' : 'follower';
    return 'own';
  }

  // ---- shared: one connection for every tab of the origin -----------------
  //
  // The tabs that open the same stream elect a leader with a Web Lock; the
  // leader holds the one connection and relays each event on a
  // BroadcastChannel. Each event carries the id of the one before it
  // (`prev`): a tab that sees a gap (a relay lost in a handover) asks for a
  // resend, which the leader answers from the events it keeps; a tab drops
  // an id it has delivered (a new leader resumes with Last-Event-ID from its
  // own last event, which other tabs may already have). When the leader tab
  // closes, the browser releases its lock and the next tab takes over.

  #shared = null;
  #port = null;

  #startWorker() {
    const options = this.#options;
    const worker = new SharedWorker(WORKER_URL, { type: 'module', name: 'tidings' });
    const port = worker.port;
    this.#port = port;
    const key = streamKey(this.url, options);
    port.onmessage = ({ data: m }) => {
      if (m.kind === 'event') {
        this.#parser.lastEventId = m.event.lastEventId;
        this.#deliver(m.event);
      } else if (m.kind === 'state') {
        this.#sharedState(m);
      }
    };
    port.start();
    port.postMessage({ kind: 'open', key, url: this.url, options: portable(options) });
    const leave = () => port.postMessage({ kind: 'close', key });
    this.#leave = leave;
    globalThis.addEventListener?.('pagehide', leave, { once: true });
  }

  #leave = null;

  #startShared() {
    const options = this.#options;
    const name = `tidings:${streamKey(this.url, options)}`;
    const shared = {
      channel: new BroadcastChannel(name),
      lockRequest: new AbortController(),
      inner: null,
      release: null,
      recent: [],
      seen: new Set(),
      last: options.lastEventId ?? '',
      awaiting: null,
    };
    this.#shared = shared;
    shared.channel.onmessage = ({ data: m }) => {
      if (m.kind === 'event') this.#sharedEvent(m.event);
      else if (m.kind === 'state' && !shared.inner) this.#sharedState(m);
      else if (m.kind === 'hello' && shared.inner) this.#announce();
      else if (m.kind === 'resend' && shared.inner) {
        const at = shared.recent.findIndex((e) => e.lastEventId === m.after);
        for (const event of shared.recent.slice(at + 1)) shared.channel.postMessage({ kind: 'event', event });
      }
    };
    shared.channel.postMessage({ kind: 'hello' });
    navigator.locks.request(name, { signal: shared.lockRequest.signal }, () => new Promise((release) => {
      if (this.readyState === CLOSED) {
        release();
        return;
      }
      shared.release = release;
      this.#lead();
    })).catch(() => {});
  }

  #lead() {
    const shared = this.#shared;
    const inner = new EventSource(this.url, {
      ...this.#options,
      shared: false,
      lastEventId: shared.last,
      relay: (event) => {
        const relayed = { ...event, prev: shared.last };
        this.#sharedEvent(relayed);
        shared.channel.postMessage({ kind: 'event', event: relayed });
      },
    });
    shared.inner = inner;
    inner.onopen = () => this.#announce();
    inner.onerror = (event) => this.#announce(event);
  }

  #announce(error) {
    const inner = this.#shared.inner;
    const state = { kind: 'state', readyState: inner.readyState, status: error?.status, message: error?.message };
    this.#sharedState(state);
    this.#shared.channel.postMessage(state);
  }

  #sharedState({ readyState, status, message }) {
    const was = this.readyState;
    if (was === CLOSED) return;
    this.readyState = readyState;
    if (readyState === OPEN && was !== OPEN) this.#fire(new Event('open'));
    if (readyState !== OPEN && status !== undefined) this.#fire(new StreamError(status, message));
  }

  #sharedEvent(event) {
    const shared = this.#shared;
    if (this.readyState === CLOSED) return;
    if (event.lastEventId && shared.seen.has(event.lastEventId)) return;
    // A gap: ask once for what is missing, then take what comes.
    if (shared.last !== '' && event.prev !== shared.last && shared.awaiting !== shared.last) {
      shared.awaiting = shared.last;
      shared.channel.postMessage({ kind: 'resend', after: shared.last });
      return;
    }
    shared.awaiting = null;
    if (event.lastEventId) {
      shared.seen.add(event.lastEventId);
      shared.last = event.lastEventId;
    }
    shared.recent.push(event);
    if (shared.recent.length > 1000) {
      const dropped = shared.recent.shift();
      shared.seen.delete(dropped.lastEventId);
    }
    this.#deliver(event);
  }

  addEventListener(type, listener, options) {
    super.addEventListener(type, listener, options);
    if (this.#native && !this.#types.has(type) && type !== 'open' && type !== 'error') {
      this.#types.add(type);
      this.#native.addEventListener(type, (event) => this.#forward(event));
    }
  }

  #fire(event) {
    const handler = this[`on${event.type}`];
    if (typeof handler === 'function') handler.call(this, event);
    this.dispatchEvent(event);
  }

  #deliver({ type, data, lastEventId }) {
    this.#delivered = true;
    if (this.#options.relay) {
      // The leader's own connection of a shared stream: the facade delivers.
      this.#parser.lastEventId = lastEventId;
      this.#options.relay({ type, data, lastEventId });
      return;
    }
    const event = new MessageEvent(type, { data, lastEventId, origin: new URL(this.url).origin });
    this.#fire(event);
  }

  // ---- the native transport ------------------------------------------------

  #openNative() {
    let url = this.url;
    if (this.#parser.lastEventId) {
      const u = new URL(url);
      u.searchParams.set('lastEventID', this.#parser.lastEventId);
      u.searchParams.set('last_event_id', this.#parser.lastEventId);
      url = u.href;
    }
    const native = new globalThis.EventSource(url, { withCredentials: this.withCredentials });
    this.#native = native;
    native.onopen = () => {
      this.readyState = OPEN;
      this.#fire(new Event('open'));
    };
    native.onerror = () => {
      this.readyState = native.readyState;
      this.#fire(new StreamError(0, native.readyState === CLOSED ? 'the stream was refused' : 'reconnecting'));
    };
    // One listener per type (the `message` type included), so that each
    // event is forwarded once.
    this.#types.add('message');
    for (const type of this.#types) native.addEventListener(type, (event) => this.#forward(event));
  }

  #forward(event) {
    this.#parser.lastEventId = event.lastEventId;
    this.#deliver({ type: event.type, data: event.data, lastEventId: event.lastEventId });
  }

  // ---- the fetch transport -------------------------------------------------

  async #connect() {
    if (this.readyState === CLOSED) return;
    const options = this.#options;
    const headers = new Headers(options.headers ?? {});
    headers.set('Accept', 'text/event-stream');
    if (this.#parser.lastEventId) headers.set('Last-Event-ID', this.#parser.lastEventId);
    this.#abort = new AbortController();
    const signal = this.#abort.signal;
    this.#parser.reset();
    this.#delivered = false;
    let response;
    try {
      response = await fetch(this.url, {
        method: options.method ?? 'GET',
        headers,
        body: options.body,
        credentials: this.withCredentials ? 'include' : 'same-origin',
        cache: 'no-store',
        signal,
      });
    } catch (error) {
      this.#retryLater(0, String(error?.message ?? error));
      return;
    }
    const type = (response.headers.get('content-type') ?? '').split(';')[0].trim().toLowerCase();
    if (response.status === 204) {
      this.#fail(204, 'the hub answered 204 No Content: nothing to stream');
      return;
    }
    if (response.status !== 200) {
      const message = (await response.text().catch(() => '')).trim().slice(0, 1024)
        || `the hub answered ${response.status}`;
      const retryable = response.status === 429 || response.status >= 500;
      if (retryable) this.#retryLater(response.status, message);
      else this.#fail(response.status, message);
      return;
    }
    if (type !== 'text/event-stream') {
      response.body?.cancel().catch(() => {});
      this.#fail(200, `expected text/event-stream, got ${type || 'no content type'}`);
      return;
    }
    this.readyState = OPEN;
    this.#fire(new Event('open'));
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let timedOut = false;
    const arm = () => {
      if (!options.readTimeout) return;
      clearTimeout(this.#timer);
      this.#timer = setTimeout(() => {
        timedOut = true;
        this.#abort.abort();
      }, options.readTimeout);
    };
    arm();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        arm();
        this.#parser.feed(decoder.decode(value, { stream: true }));
      }
    } catch {
      // Aborted (close or read timeout) or the connection broke.
    }
    clearTimeout(this.#timer);
    if (this.readyState === CLOSED) return;
    if (this.#delivered) this.#delay = options.retry;
    this.#retryLater(0, timedOut ? `nothing arrived for ${options.readTimeout} ms` : 'the stream ended');
  }

  #retryLater(status, message) {
    if (this.readyState === CLOSED) return;
    this.readyState = CONNECTING;
    this.#fire(new StreamError(status, message));
    if (this.readyState === CLOSED) return; // closed by an error handler
    const delay = this.#delay * (0.5 + Math.random() / 2);
    this.#delay = Math.min(this.#delay * 2, this.#options.maxRetry);
    this.#timer = setTimeout(() => this.#connect(), delay);
  }

  #fail(status, message) {
    this.readyState = CLOSED;
    this.#fire(new StreamError(status, message));
  }
}

/** What identifies a shared stream: its URL, headers, method and body. */
function streamKey(url, options) {
  const headers = [...new Headers(options.headers ?? {}).entries()];
  const body = typeof options.body === 'string' ? options.body : '';
  return JSON.stringify([url, headers, options.method ?? 'GET', body]);
}

/** The options a worker can receive (headers as pairs, no functions). */
function portable(options) {
  const { relay, shared, ...rest } = options;
  return { ...rest, headers: [...new Headers(options.headers ?? {}).entries()] };
}

// This module, loaded as a module SharedWorker by the pages that share a
// stream: it holds one connection per stream for every tab that opens it,
// and closes it when the last tab leaves.
const WORKER_URL = typeof import.meta === 'object' ? import.meta.url : '';

if (typeof SharedWorkerGlobalScope === 'function' && globalThis instanceof SharedWorkerGlobalScope) {
  const streams = new Map();
  globalThis.onconnect = ({ ports: [port] }) => {
    port.onmessage = ({ data: m }) => {
      if (m.kind === 'open') {
        let stream = streams.get(m.key);
        if (!stream) {
          stream = { ports: new Set(), state: { kind: 'state', readyState: CONNECTING } };
          const broadcast = (message) => {
            for (const p of stream.ports) p.postMessage(message);
          };
          const headers = m.options.headers.length ? m.options.headers : undefined;
          stream.source = new EventSource(m.url, {
            ...m.options,
            headers,
            transport: m.options.transport ?? 'fetch',
            relay: (event) => broadcast({ kind: 'event', event }),
          });
          const announce = (error) => {
            stream.state = { kind: 'state', readyState: stream.source.readyState, status: error?.status, message: error?.message };
            broadcast(stream.state);
          };
          stream.source.onopen = () => announce();
          stream.source.onerror = (error) => announce(error);
          streams.set(m.key, stream);
        }
        stream.ports.add(port);
        port.postMessage(stream.state);
      } else if (m.kind === 'close') {
        const stream = streams.get(m.key);
        if (!stream) return;
        stream.ports.delete(port);
        if (stream.ports.size === 0) {
          stream.source.close();
          streams.delete(m.key);
        }
      }
    };
  };
}

/**
 * A Mercure subscription: `topics` as `topic=` (draft-07) unless
 * `options.match` is `'exact'` or `'urlpattern'` (draft-08's `match=` /
 * `match_urlpattern=`); `options.lastEventId` resumes; the rest as for
 * `EventSource` (`headers: {Authorization: 'Bearer …'}` for a token).
 */
export function subscribe(hubUrl, topics, options = {}) {
  const url = new URL(hubUrl, globalThis.location?.href);
  const name = { exact: 'match', urlpattern: 'match_urlpattern' }[options.match] ?? 'topic';
  for (const topic of [].concat(topics)) url.searchParams.append(name, topic);
  return new EventSource(url, options);
}

/**
 * Publishes an update to a Mercure hub; resolves with the id the hub gave
 * it, rejects with the hub's status and message.
 */
export async function publish(hubUrl, { topic, data = '', id, type, private: isPrivate, retry }, token) {
  const body = new URLSearchParams();
  for (const t of [].concat(topic)) body.append('topic', t);
  body.append('data', data);
  if (id !== undefined) body.append('id', id);
  if (type !== undefined) body.append('type', type);
  if (isPrivate) body.append('private', 'on');
  if (retry !== undefined) body.append('retry', String(retry));
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const response = await fetch(hubUrl, { method: 'POST', headers, body });
  const text = await response.text();
  if (response.status !== 200) {
    const error = new Error(`publish answered ${response.status}: ${text.trim()}`);
    error.status = response.status;
    throw error;
  }
  return text;
}
