// The GRIP origin behind bench/peers/pushpin.sh (no dependencies): it answers
// every GET /sub?id=CHANNEL with Grip-Hold: stream and Grip-Channel: CHANNEL,
// so Pushpin keeps the client's response open and subscribes it to CHANNEL.
// It never sees a published message: Pushpin's publish API does the fan-out.
//   node bench/peers/grip-origin.mjs PORT [RATE]
// RATE (default 1000) caps the answers per second. pushpin-proxy hands every
// answer to pushpin-handler over a ZeroMQ socket whose queue (100, fixed in
// the code) it treats as "unavailable" when full: it then answers the
// subscriber 500 "Accept service unavailable." instead of waiting. Answers in
// bursts (200 subscribers connecting at once, on 2 busy cores) hit that for
// about 1.5 % of 10 000 subscribers; spaced out at RATE they do not. Only the
// connect phase is slowed (10 000 subscribers: about 10 s); 0 turns it off.
import http from 'node:http';

const port = Number(process.argv[2] ?? 5203);
const rate = Number(process.argv[3] ?? 1000);
const tick = 2; // ms
const perTick = Math.max(1, Math.round((rate * tick) / 1000));
const queue = [];
let timer = null;

function answer(res, id) {
  if (res.destroyed) return;
  res.writeHead(200, {
    'Content-Type': 'text/event-stream',
    'Cache-Control': 'no-cache',
    'Grip-Hold': 'stream',
    'Grip-Channel': id,
    // An SSE comment after 55 s without traffic, as Pushpin's examples do.
    'Grip-Keep-Alive': ':\\n\\n; format=cstring; timeout=55',
  });
  // No body: Pushpin subscribes a held stream only once its initial body
  // is written to condure, one round trip after the response head went
  // out; with an empty body the head and the subscription are one step,
  // so a subscriber that has the 200 is sure to get the next publish.
  res.end();
}

function drain() {
  for (let n = 0; n < perTick && queue.length > 0; n++) answer(...queue.shift());
  if (queue.length === 0) {
    clearInterval(timer);
    timer = null;
  }
}

http
  .createServer((req, res) => {
    const url = new URL(req.url, 'http://localhost');
    const id = url.searchParams.get('id') ?? 'default';
    if (req.method === 'GET' && url.pathname === '/sub') {
      if (rate <= 0) return answer(res, id);
      queue.push([res, id]);
      timer ??= setInterval(drain, tick);
    } else {
      res.writeHead(404).end();
    }
  })
  .listen(port, '127.0.0.1');
