"""Verifies webhook deliveries with the `standardwebhooks` package (PyPI), an implementation the
gateway's authors did not write (SPEC §8, issue 16).

stdin: {"secret": "whsec_…", "deliveries": [{"headers": {name: value}, "body": "…"}, …]}
stdout: a JSON list, one entry per delivery: null when its signature is valid for the secret,
else the verifier's reason. Exit 0 when every delivery is valid, 1 otherwise, 2 on bad input.
"""

import json
import sys

try:
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError
except ImportError:
    print("verify.py: the standardwebhooks package is not installed (scripts/test installs it)", file=sys.stderr)
    sys.exit(2)


def main() -> int:
    try:
        request = json.load(sys.stdin)
        webhook = Webhook(request["secret"])
    except Exception as e:  # bad input is the test's bug, not a verdict
        print(f"verify.py: bad input: {type(e).__name__}", file=sys.stderr)
        return 2
    results = []
    for delivery in request["deliveries"]:
        try:
            webhook.verify(delivery["body"], delivery["headers"], json_parse=False)
            results.append(None)
        except (WebhookVerificationError, ValueError) as e:
            results.append(f"{type(e).__name__}: {e}")
    print(json.dumps(results))
    return 0 if all(r is None for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
