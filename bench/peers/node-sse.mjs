// The pattern SSE tutorials teach, in plain Node (no dependencies): a handler
// per connection that keeps the response open, and a publish endpoint that
// formats the event and calls res.write() for every client.
//   node bench/peers/node-sse.mjs PORT
// Subscribe: GET /sub?id=CHANNEL; publish: POST /pub?id=CHANNEL, data as body.
import http from 'node:http';

const port = Number(process.argv[2] ?? 3300);
const channels = new Map();
let nextId = 1;

http
  .createServer((req, res) => {
    const url = new URL(req.url, 'http://localhost');
    const id = url.searchParams.get('id') ?? 'default';
    if (req.method === 'GET' && url.pathname === '/sub') {
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
      res.write(':\n\n');
      if (!channels.has(id)) channels.set(id, new Set());
      channels.get(id).add(res);
      req.on('close', () => channels.get(id)?.delete(res));
    } else if (req.method === 'POST' && url.pathname === '/pub') {
      let body = '';
      req.on('data', (chunk) => (body += chunk));
      req.on('end', () => {
        const event = `id: ${nextId++}\ndata: ${body.split('\n').join('\ndata: ')}\n\n`;
        for (const client of channels.get(id) ?? []) client.write(event);
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        res.end('ok');
      });
    } else {
      res.writeHead(404).end();
    }
  })
  .listen(port, '127.0.0.1');
