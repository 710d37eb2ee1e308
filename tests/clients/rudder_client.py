"""Drive a running hogsend daemon with rudder-sdk-python, and check a revoked key's 401 is
final: the SDK reads the top-level `code` of the error body and gives up after one request
(without it, it retries 11 times with backoff).

Usage: python3 rudder_client.py --host http://127.0.0.1:PORT --key WRITE_KEY --revoked KEY
Exits non-zero on any failure; tests/clients.rs checks what the daemon stored.
"""

import argparse
import sys

try:
    import requests
    import rudderstack.analytics as rudder
    from rudderstack.analytics.client import Client
except ImportError:
    sys.exit("rudder-sdk-python is not installed: python3 -m pip install rudder-sdk-python (.ci/run does this)")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--revoked", required=True)
    args = parser.parse_args()

    errors = []
    good = Client(args.key, host=args.host, on_error=lambda e, batch: errors.append(e))
    good.track(user_id="rp-user", event="signed_up")
    good.flush()
    good.join()
    if errors:
        print(f"rudder SDK errors: {errors}", file=sys.stderr)
        return 1

    sent = []
    original = requests.Session.post

    def counting(self, url, **kw):
        if url.startswith(args.host):
            sent.append(url)
        return original(self, url, **kw)

    requests.Session.post = counting
    refused = []
    bad = Client(args.revoked, host=args.host, on_error=lambda e, batch: refused.append(e))
    bad.track(user_id="rp-user", event="lost")
    bad.flush()
    bad.join()
    requests.Session.post = original
    statuses = [(getattr(e, "status", None), getattr(e, "code", None)) for e in refused]
    if statuses != [(401, "unauthorized")] or len(sent) != 1:
        print(f"revoked key: errors {statuses!r}, requests {sent!r}", file=sys.stderr)
        return 1
    print("rudder python client: a revoked key was refused once, not retried")
    return 0


if __name__ == "__main__":
    sys.exit(main())
