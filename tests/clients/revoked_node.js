// A revoked key against each JavaScript SDK (posthog-node, @segment/analytics-node,
// @rudderstack/rudder-sdk-node with default settings): the daemon answers one 401 and the SDK
// must take it as final — no retry — and report the failure.
//
// Each SDK is pointed at a counting proxy in this process that forwards to the daemon, so
// the count is of what went over the wire, whatever HTTP client the SDK uses. Every SDK's
// flush waits for its own retries, so once it returns the count is complete; a short pause
// after it catches a retry scheduled late.
//
// Usage: node revoked_node.js --host http://127.0.0.1:PORT --key REVOKED_KEY
// Exits non-zero on any failure.

const http = require("http");

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].slice(2)] = process.argv[i + 1];

let PostHog, SegmentAnalytics, RudderAnalytics;
try {
  ({ PostHog } = require("posthog-node"));
  ({ Analytics: SegmentAnalytics } = require("@segment/analytics-node"));
  RudderAnalytics = require("@rudderstack/rudder-sdk-node");
} catch (e) {
  console.error("the JavaScript SDKs are not installed: npm install --prefix tests/clients (.ci/run does this)");
  process.exit(2);
}

const target = new URL(args.host);
const seen = []; // [method, path, status] of every request the proxy forwarded

const proxy = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks);
    const headers = { ...req.headers, host: target.host, "content-length": body.length };
    const upstream = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers },
      (up) => {
        seen.push([req.method, req.url, up.statusCode]);
        res.writeHead(up.statusCode, up.headers);
        up.pipe(res);
      },
    );
    upstream.on("error", (e) => {
      seen.push([req.method, req.url, `error ${e.message}`]);
      res.writeHead(502);
      res.end();
    });
    upstream.end(body);
  });
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function posthogNode(url) {
  const errors = [];
  const client = new PostHog(args.key, { host: url, flushAt: 100, flushInterval: 0 });
  client.on("error", (e) => errors.push(e));
  client.capture({ distinctId: "revoked-user", event: "lost" });
  await client.shutdown();
  return errors.map((e) => (e && e.status) || String(e));
}

async function segmentNode(url) {
  const errors = [];
  const client = new SegmentAnalytics({ writeKey: args.key, host: url, flushAt: 100 });
  client.on("error", (e) => errors.push(e));
  client.track({ userId: "revoked-user", event: "lost" });
  await client.closeAndFlush({ timeout: 20000 });
  return errors.map((e) => String((e && (e.reason || e.message)) || e));
}

async function rudderNode(url) {
  const errors = [];
  const client = new RudderAnalytics(args.key, {
    dataPlaneUrl: url,
    errorHandler: (e) => errors.push(e),
    logLevel: "error",
  });
  client.track({ userId: "revoked-user", event: "lost" });
  await client.flush().catch((e) => errors.push(e));
  return errors.map((e) => (e && e.response && e.response.status) || String(e));
}

async function main() {
  await new Promise((r) => proxy.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${proxy.address().port}`;
  const failures = [];
  for (const [name, run] of [
    ["posthog-node", posthogNode],
    ["@segment/analytics-node", segmentNode],
    ["@rudderstack/rudder-sdk-node", rudderNode],
  ]) {
    seen.length = 0;
    const errors = await run(url);
    await sleep(1500);
    const statuses = seen.map((s) => s[2]);
    const line = `${name}: requests ${JSON.stringify(seen)}, errors ${JSON.stringify(errors)}`;
    console.log(line);
    if (statuses.length !== 1 || statuses[0] !== 401) failures.push(`${line}: expected exactly one request, answered 401`);
    if (errors.length === 0) failures.push(`${line}: the SDK did not report the failure`);
  }
  proxy.close();
  if (failures.length) {
    console.error(failures.join("\n"));
    process.exit(1);
  }
  process.exit(0);
}

main().catch((e) => {
  console.error(String((e && e.stack) || e));
  process.exit(1);
});
