// Drive a running hogsend daemon with posthog-node and @segment/analytics-node, each
// configured only with the daemon's URL and a key.
//
// Usage: node node_sdks.js --host http://127.0.0.1:PORT --key KEY
// Exits non-zero on any failure; tests/clients.rs checks what the daemon stored.

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].slice(2)] = process.argv[i + 1];

let PostHog, Analytics;
try {
  ({ PostHog } = require("posthog-node"));
  ({ Analytics } = require("@segment/analytics-node"));
} catch (e) {
  console.error("posthog-node / @segment/analytics-node are not installed: npm install --prefix tests/clients (.ci/run does this)");
  process.exit(2);
}

async function main() {
  const errors = [];
  const posthog = new PostHog(args.key, { host: args.host, flushAt: 100, flushInterval: 0 });
  posthog.on("error", (e) => errors.push(e));
  posthog.capture({ distinctId: "pn-anon", event: "signed_up", properties: { source: "posthog-node" } });
  posthog.capture({
    distinctId: "pn-user",
    event: "$identify",
    properties: { $anon_distinct_id: "pn-anon", $set: { email: "PN@Example.com", plan: "pro" } },
  });
  posthog.capture({ distinctId: "pn-user", event: "app_opened", timestamp: new Date("2026-01-05T09:30:00Z") });
  posthog.alias({ distinctId: "pn-device", alias: "pn-user" });
  await posthog.shutdown();

  const segment = new Analytics({ writeKey: args.key, host: args.host, flushAt: 100 });
  segment.on("error", (e) => errors.push(e));
  segment.track({ anonymousId: "sn-anon", event: "signed_up" });
  segment.identify({ userId: "sn-user", anonymousId: "sn-anon", traits: { email: "SN@Example.com", plan: "pro" } });
  segment.track({ userId: "sn-user", event: "app_opened", timestamp: new Date("2026-01-05T09:30:00Z") });
  await segment.closeAndFlush({ timeout: 10000 });

  if (errors.length) {
    console.error("SDK errors:", errors.map((e) => String(e && (e.message || e.reason || e))));
    process.exit(1);
  }
  console.log("node SDKs: calls sent");
}

main().catch((e) => {
  console.error(String(e));
  process.exit(1);
});
