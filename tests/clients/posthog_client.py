"""Drive a running hogsend daemon with the stock PostHog Python SDK (posthog).

Usage: python3 posthog_client.py --host http://127.0.0.1:PORT --key PROJECT_KEY [--revoked KEY]

The SDK is configured only with the daemon's URL and a key, as an application would: it
posts `{"api_key", "batch", "sent_at"}` to /batch/ from its upload thread. The script sends
captures with the SDK's own timestamps, `set`/`set_once`, an `$identify` with
`$anon_distinct_id`, an `alias`, and a replay (one uuid twice); then, with `--revoked`, one
event with a revoked key, counting the HTTP requests the SDK makes: a 401 must be final
(one request, no retry). Exits non-zero on any failure; tests/clients.rs checks what the
daemon stored.
"""

import argparse
import sys
from datetime import datetime, timezone

try:
    import requests
    from posthog import Posthog
except ImportError:
    sys.exit("posthog is not installed: python3 -m pip install posthog (.ci/run does this)")


def client(key, host, errors, **kwargs):
    return Posthog(
        key,
        host=host,
        on_error=lambda e, batch: errors.append(e),
        enable_local_evaluation=False,
        **kwargs,
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--revoked")
    args = parser.parse_args()

    errors = []
    plain = client(args.key, args.host, errors)
    zipped = client(args.key, args.host, errors, gzip=True)
    at = datetime(2026, 1, 5, 9, 30, tzinfo=timezone.utc)
    plain.capture("signed_up", distinct_id="ph-anon", properties={"source": "posthog-python"})
    plain.capture("$pageview", distinct_id="ph-anon", properties={"$current_url": "https://x/pricing"})
    plain.capture(
        "$identify",
        distinct_id="ph-user",
        properties={"$anon_distinct_id": "ph-anon", "$set": {"email": " PH.User@Example.COM "}},
    )
    plain.set(distinct_id="ph-user", properties={"plan": "pro"})
    plain.set_once(distinct_id="ph-user", properties={"plan": "free", "first_seen": "python"})
    zipped.capture("app_opened", distinct_id="ph-user", timestamp=at, properties={"n": 1})
    for _ in range(2):
        zipped.capture(
            "invoice.paid",
            distinct_id="ph-user",
            uuid="01900000-0000-7000-8000-00000000aaaa",
        )
    plain.alias(previous_id="ph-device", distinct_id="ph-user")
    plain.flush()
    zipped.flush()
    plain.shutdown()
    zipped.shutdown()
    if errors:
        print(f"posthog SDK errors: {errors}", file=sys.stderr)
        return 1

    if args.revoked:
        sent = []
        original = requests.Session.send

        def counting(self, request, **kw):
            if request.url.startswith(args.host):
                sent.append(request.url)
            return original(self, request, **kw)

        requests.Session.send = counting
        refused = []
        revoked = client(args.revoked, args.host, refused)
        revoked.capture("lost", distinct_id="ph-user")
        revoked.flush()
        revoked.shutdown()
        requests.Session.send = original
        statuses = [getattr(e, "status", None) for e in refused]
        if statuses != [401] or len(sent) != 1:
            print(f"revoked key: errors {refused!r}, requests {sent!r}", file=sys.stderr)
            return 1
    print("posthog client: calls sent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
