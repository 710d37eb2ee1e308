"""Drive a running hogsend daemon with the stock Segment Python SDK (segment-analytics-python).

Usage: python3 segment_client.py --host http://127.0.0.1:PORT --key WRITE_KEY [--revoked KEY]

The SDK is used exactly as an application would: a Client pointed at the daemon's host with
the API key as its write key (sent as HTTP basic auth). sync_mode makes every call one
request to /v1/batch, so an error raises here instead of being retried in a thread; the
script exits non-zero on any failure. The Rust test (tests/clients.rs) then checks what the
daemon stored. With `--revoked`, one event is sent with a revoked key from the SDK's own
upload thread (not sync_mode), counting the HTTP requests it makes: the 401 must be final
(one request, no retry).
"""

import argparse
import sys

try:
    import requests
    from segment.analytics import Client
except ImportError:
    sys.exit(
        "segment-analytics-python is not installed: "
        "python3 -m pip install segment-analytics-python==2.4.0 (.ci/run does this)"
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--revoked")
    args = parser.parse_args()

    errors = []
    plain = Client(args.key, host=args.host, sync_mode=True, on_error=lambda e, batch: errors.append(e))
    zipped = Client(args.key, host=args.host, sync_mode=True, gzip=True, on_error=lambda e, batch: errors.append(e))

    # A visitor before signing in, then the sign-in, then the signed-in user.
    plain.track(anonymous_id="py-anon", event="signed_up", properties={"source": "python"})
    plain.page(anonymous_id="py-anon", name="Pricing", properties={"path": "/pricing"})
    plain.identify(
        user_id="py-user",
        anonymous_id="py-anon",
        traits={"email": "  Py.User@Example.COM ", "plan": "pro"},
    )
    zipped.track(user_id="py-user", event="app_opened", properties={"n": 1})
    zipped.track(user_id="py-user", event="app_opened", properties={"n": 2})
    # The same call twice with one message id: the daemon stores it once.
    for _ in range(2):
        plain.track(user_id="py-user", event="invoice.paid", message_id="py-invoice-1")
    plain.alias(previous_id="py-anon", user_id="py-user")
    plain.flush()
    if errors:
        print(f"segment SDK errors: {errors}", file=sys.stderr)
        return 1
    print("segment client: 8 calls sent")

    if args.revoked:
        sent = []
        original = requests.Session.post

        def counting(self, url, *a, **kw):
            if url.startswith(args.host):
                sent.append(url)
            return original(self, url, *a, **kw)

        requests.Session.post = counting
        refused = []
        revoked = Client(args.revoked, host=args.host, on_error=lambda e, batch: refused.append(e))
        revoked.track(user_id="py-user", event="lost")
        revoked.flush()
        revoked.join()
        requests.Session.post = original
        statuses = [getattr(e, "status", None) for e in refused]
        if statuses != [401] or len(sent) != 1:
            print(f"revoked key: errors {refused!r}, requests {sent!r}", file=sys.stderr)
            return 1
        print("segment client: a revoked key was refused once, not retried")
    return 0


if __name__ == "__main__":
    sys.exit(main())
