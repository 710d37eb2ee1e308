// Drive a running hogsend daemon with @rudderstack/rudder-sdk-node, default settings (it
// posts gzipped JSON labelled application/x-www-form-urlencoded to /v1/batch, items with
// originalTimestamp and no timestamp).
//
// Usage: node rudder_node.js --host http://127.0.0.1:PORT --key WRITE_KEY
// Exits non-zero on any failure; tests/clients.rs checks what the daemon stored.

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].slice(2)] = process.argv[i + 1];

let Analytics;
try {
  Analytics = require("@rudderstack/rudder-sdk-node");
} catch (e) {
  console.error("@rudderstack/rudder-sdk-node is not installed: npm install --prefix tests/clients (.ci/run does this)");
  process.exit(2);
}

const errors = [];
const client = new Analytics(args.key, {
  dataPlaneUrl: args.host,
  errorHandler: (err) => errors.push(err),
  logLevel: "error",
});

client.track({ anonymousId: "rn-anon", event: "signed_up", properties: { source: "rudder-node" } });
client.page({ anonymousId: "rn-anon", name: "Pricing", properties: { path: "/pricing" } });
client.identify({ userId: "rn-user", anonymousId: "rn-anon", traits: { email: " RN@Example.com ", plan: "pro" } });
client.track({ userId: "rn-user", event: "app_opened" });

client
  .flush()
  .then(() => {
    if (errors.length) {
      console.error("rudder-sdk-node errors:", errors.map(String));
      process.exit(1);
    }
    console.log("rudder node client: 4 calls sent");
    process.exit(0);
  })
  .catch((e) => {
    console.error("flush failed:", String(e), e && e.response && e.response.status);
    process.exit(1);
  });
