"""CLI: ``PYTHONPATH=tests python -m freshbooks_emulator serve --port 8765 --seed demo --state-file /tmp/x.json``"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from datetime import datetime

from .emulator import FreshBooksEmulator


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="freshbooks_emulator")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="run the emulator as an HTTP server")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8765)
    s.add_argument("--seed", default="demo", help="empty | small | demo")
    s.add_argument("--now", default=None, help="freeze the data clock (ISO 8601 UTC)")
    s.add_argument("--state-file", default=None, help="write url/credentials/grant JSON here")
    s.add_argument("--client-id", default="test-client-id")
    s.add_argument("--client-secret", default="test-client-secret")
    s.add_argument("--redirect-uri", default="https://localhost/callback")
    s.add_argument(
        "--bulk",
        action="append",
        default=[],
        help="STREAM:N[:ACCOUNT_ID] lazily bulk-seed N records (repeatable)",
    )
    s.add_argument("--access-token-ttl", type=int, default=None)
    a = ap.parse_args(argv)

    now = datetime.fromisoformat(a.now.replace("Z", "+00:00")) if a.now else None
    emu = FreshBooksEmulator(
        seed=a.seed,
        now=now,
        host=a.host,
        port=a.port,
        client_id=a.client_id,
        client_secret=a.client_secret,
        redirect_uri=a.redirect_uri,
    )
    if a.access_token_ttl:
        emu.access_token_ttl = a.access_token_ttl
    for spec in a.bulk:
        parts = spec.split(":")
        emu.seed_bulk(parts[0], int(parts[1]), parts[2] if len(parts) > 2 else None)
    emu.start()
    if a.state_file:
        state = {
            "url": emu.url,
            "client_id": emu.client_id,
            "client_secret": emu.client_secret,
            "redirect_uri": emu.redirect_uri,
            "grant": emu.issue_grant(),
            "accounts": emu.accounts,
        }
        tmp = a.state_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(state, f, indent=2)
        os.replace(tmp, a.state_file)
    print(f"FreshBooks emulator listening on {emu.url} (seed={a.seed})", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    emu.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
