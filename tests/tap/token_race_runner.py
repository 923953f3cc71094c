"""One "runner" of the token race: a separate process with its own HOME and working directory.

    python token_race_runner.py CONFIG_JSON

It builds the tap's authenticator from the config (the same code a tap run uses) and then, for each
``go`` line on stdin, makes one API call the way the tap's client does: Bearer token, and after a
401 ``handle_unauthorized`` + one retry. It answers one JSON line per call:
``{"status": 200, "rotations": <token POSTs this process made that rotated the pair>}``, or
``{"error": "<one line>"}``. It never prints a token.
"""

from __future__ import annotations

import json
import logging
import sys

import requests


def main(config_path: str) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="runner %(levelname)s %(message)s")
    with open(config_path, encoding="utf-8") as handle:
        config = json.load(handle)
    from freshbooks_auth.authenticator import authenticator_from_config  # noqa: PLC0415
    from freshbooks_auth.errors import FreshBooksError  # noqa: PLC0415

    auth = authenticator_from_config(config)
    session = requests.Session()
    url = config["api_url"].rstrip("/") + "/auth/api/v1/users/me"
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "go":
            break
        try:
            token = auth.get_access_token()
            response = session.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
            if response.status_code == 401:
                auth.handle_unauthorized(token)
                token = auth.get_access_token()
                response = session.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
            answer = {"status": response.status_code, "rotations": auth.refresh_count}
        except FreshBooksError as exc:
            answer = {"error": str(exc), "rotations": auth.refresh_count}
        print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
