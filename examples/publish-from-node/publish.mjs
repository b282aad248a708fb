// Publish to Tidings from Node: the express tutorial's server, turned into a
// publisher. It no longer holds browsers' connections (the hub does, with
// resume and keep-alives); it only POSTs each update, like any HTTP call.
//
//   cargo run --release -- serve          # the hub; it prints a publisher token
//   TIDINGS_TOKEN=<publisher token> node examples/publish-from-node/publish.mjs
//   curl -N 'http://127.0.0.1:3000/.well-known/mercure?topic=numbers'   # watch
//
// Environment: TIDINGS_TOKEN (required), TIDINGS_URL (default
// http://127.0.0.1:3000/.well-known/mercure), TOPIC (default numbers),
// COUNT (default: until stopped), INTERVAL_MS (default 1000). Node 18 or newer
// (global fetch); no packages.

const hub = process.env.TIDINGS_URL ?? 'http://127.0.0.1:3000/.well-known/mercure';
const token = process.env.TIDINGS_TOKEN;
const topic = process.env.TOPIC ?? 'numbers';
const count = Number(process.env.COUNT ?? Infinity);
const interval = Number(process.env.INTERVAL_MS ?? 1000);

if (!token) {
  console.error('set TIDINGS_TOKEN to a publisher token (tidings serve prints one in development mode)');
  process.exit(2);
}

// One update: a Mercure form POST. The hub answers the update's id once it is
// stored, so a 200 means every subscriber gets it, now or when it resumes.
async function publish(data) {
  const body = new URLSearchParams({ topic, data });
  const reply = await fetch(hub, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}` },
    body,
  });
  const text = (await reply.text()).trim();
  if (!reply.ok) throw new Error(`the hub answered ${reply.status}: ${text}`);
  return text;
}

for (let sent = 0; sent < count; sent++) {
  if (sent > 0) await new Promise((resolve) => setTimeout(resolve, interval));
  const update = JSON.stringify({ timestamp: Date.now(), value: Math.random() });
  try {
    console.log(`${await publish(update)} ${update}`);
  } catch (error) {
    console.error(`cannot publish to ${hub}: ${error.cause?.message ?? error.message}`);
    process.exit(1);
  }
}
