"""The tested recipe for runners that keep nothing (CI, cron on throwaway hosts, containers).

One place for what tests/runner/test_two_clones.py runs and what examples/ and the README's
"Run it in CI / cron / containers" section tell users to run; tests/runner/test_examples.py holds
them in step.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: the one command a scheduled run executes
RUN_COMMAND = ["meltano", "run", "tap-freshbooks", "target-postgres"]
#: what a runner installs before it (same Meltano as requirements-dev.txt, with its S3 state backend)
MELTANO_PIN = re.search(r"^meltano==([\w.]+)", (ROOT / "requirements-dev.txt").read_text(), re.M).group(1)
INSTALL_MELTANO = f"meltano[s3]=={MELTANO_PIN}"
INSTALL_PLUGINS = ["meltano install extractor tap-freshbooks", "meltano install loader target-postgres"]

#: everything that must outlive a runner, in one bucket
BACKENDS = {
    "MELTANO_STATE_BACKEND_URI": "s3://{bucket}/state",
    "TAP_FRESHBOOKS_TOKEN_STORE_URL": "s3://{bucket}/tokens/freshbooks.fernet",
    "TAP_FRESHBOOKS_PIPELINE_LOCK_URL": "s3://{bucket}/locks",
}
FIXED = {"MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false"}
#: supplied by the user (secrets / settings of their accounts)
SUPPLIED = [
    "TAP_FRESHBOOKS_TOKEN_ENCRYPTION_KEY",
    "TAP_FRESHBOOKS_CLIENT_ID",
    "TAP_FRESHBOOKS_CLIENT_SECRET",
    "TAP_FRESHBOOKS_REDIRECT_URI",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "TARGET_POSTGRES_HOST",
    "TARGET_POSTGRES_PORT",
    "TARGET_POSTGRES_USER",
    "TARGET_POSTGRES_PASSWORD",
    "TARGET_POSTGRES_DATABASE",
]
#: only for S3 APIs other than AWS
OPTIONAL = ["AWS_ENDPOINT_URL"]
REQUIRED = [*BACKENDS, *FIXED, *SUPPLIED]


def environment(bucket: str, supplied: dict[str, str]) -> dict[str, str]:
    """The recipe's variables with the backends in ``bucket`` and the user's values."""
    unknown = set(supplied) - set(SUPPLIED) - set(OPTIONAL)
    missing = set(SUPPLIED) - set(supplied)
    if unknown or missing:
        msg = f"recipe variables: unknown {sorted(unknown)}, missing {sorted(missing)}"
        raise ValueError(msg)
    return {**{k: v.format(bucket=bucket) for k, v in BACKENDS.items()}, **FIXED, **supplied}
