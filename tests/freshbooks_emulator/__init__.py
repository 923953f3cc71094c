"""A local FreshBooks API emulator (real HTTP server) for tests, the demo and benchmarks.

Follows /work/shared/freshbooks-api.md: accounting envelope ``{"response":{"result":{...}}}``,
project-family ``meta`` envelope, ledger ``{"data": ...}``, naive US/Eastern accounting
timestamps, rotating single-use refresh tokens, webhook callbacks with HMAC signatures.

    from freshbooks_emulator import FreshBooksEmulator
    emu = FreshBooksEmulator(seed="small").start()
    grant = emu.issue_grant()      # {"access_token", "refresh_token", ...}
    ...
    emu.stop()

Modules: streams (resource table), render (API shapes), store (data + mutations), seed
(deterministic generators; the seed content is documented there), oauth, faults, webhooks,
server (HTTP routing + /_emulator admin API), emulator (the FreshBooksEmulator object).
"""

from .emulator import FreshBooksEmulator
from .streams import STREAMS
from .webhooks import sign_webhook

__all__ = ["STREAMS", "FreshBooksEmulator", "sign_webhook"]
