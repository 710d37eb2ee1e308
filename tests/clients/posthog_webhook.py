"""Replay a recorded PostHog webhook payload (posthog_webhook.json) into a running daemon.

Usage: python3 posthog_webhook.py --host http://127.0.0.1:PORT --key API_KEY

Posts the fixture with `requests`, as PostHog's webhook destination would, twice: the
second delivery (PostHog retries) must store nothing. Exits non-zero on any unexpected
answer.
"""

import argparse
import json
import pathlib
import sys

import requests


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args()
    payload = json.loads((pathlib.Path(__file__).parent / "posthog_webhook.json").read_text())
    url = args.host.rstrip("/") + "/v1/webhooks/posthog"
    headers = {"Authorization": f"Bearer {args.key}"}
    expected_stored = len(payload)
    for attempt in range(2):
        res = requests.post(url, json=payload, headers=headers, timeout=10)
        if res.status_code != 200:
            print(f"delivery {attempt}: HTTP {res.status_code}: {res.text}", file=sys.stderr)
            return 1
        body = res.json()
        if body.get("stored") != expected_stored:
            print(f"delivery {attempt}: expected {expected_stored} stored, got {body}", file=sys.stderr)
            return 1
        expected_stored = 0
    print("posthog webhook: delivered twice, stored once")
    return 0


if __name__ == "__main__":
    sys.exit(main())
