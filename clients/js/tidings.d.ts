// Type declarations of tidings.js.

export interface EventSourceOptions {
  /** Request headers, e.g. `{ Authorization: 'Bearer …' }`: the stream then goes over fetch. */
  headers?: Record<string, string> | Headers;
  /** The request method (default GET); with `body`, e.g. a Mercure QUERY. */
  method?: string;
  body?: BodyInit;
  /** The first reconnection delay in ms (default 1000); a `retry:` field replaces it. */
  retry?: number;
  /** The longest reconnection delay in ms (default 30 000). */
  maxRetry?: number;
  /** The id to resume after on the first connection. */
  lastEventId?: string;
  /** Reconnect when nothing (not even a keep-alive comment) arrived for this many ms. */
  readTimeout?: number;
  withCredentials?: boolean;
  /** `native` (the browser's EventSource) or `fetch`; by default native unless an option needs fetch. */
  transport?: 'native' | 'fetch';
  /** One connection for every tab of the origin that opens the same stream. */
  shared?: boolean;
}

/** The `error` event: `status` 0 for a network error or a timeout, else the HTTP status. */
export class StreamError extends Event {
  readonly status: number;
  readonly message: string;
}

export class EventSource extends EventTarget {
  static readonly CONNECTING: 0;
  static readonly OPEN: 1;
  static readonly CLOSED: 2;
  constructor(url: string | URL, options?: EventSourceOptions);
  readonly url: string;
  readonly withCredentials: boolean;
  readonly readyState: 0 | 1 | 2;
  /** The id of the last event received. */
  readonly lastEventId: string;
  /** With `shared`: whether this tab holds the connection for all. */
  readonly isLeader: boolean;
  /** Who holds the connection: this tab, another tab, a SharedWorker, or this stream alone. */
  readonly sharing: 'leader' | 'follower' | 'worker' | 'own';
  onopen: ((this: EventSource, event: Event) => unknown) | null;
  onmessage: ((this: EventSource, event: MessageEvent<string>) => unknown) | null;
  onerror: ((this: EventSource, event: StreamError) => unknown) | null;
  close(): void;
}

/** An incremental `text/event-stream` parser (WHATWG HTML's rules). */
export class StreamParser {
  constructor(
    onEvent: (event: { type: string; data: string; lastEventId: string }) => void,
    onRetry?: (ms: number) => void,
  );
  lastEventId: string;
  feed(text: string): void;
  reset(): void;
}

export interface SubscribeOptions extends EventSourceOptions {
  /** Draft-08 matchers instead of draft-07 `topic=`. */
  match?: 'exact' | 'urlpattern';
}

export function subscribe(hubUrl: string | URL, topics: string | string[], options?: SubscribeOptions): EventSource;

export interface Update {
  topic: string | string[];
  data?: string;
  id?: string;
  type?: string;
  private?: boolean;
  retry?: number;
}

/** Resolves with the id the hub gave the update; rejects with an Error carrying `status`. */
export function publish(hubUrl: string | URL, update: Update, token?: string): Promise<string>;
