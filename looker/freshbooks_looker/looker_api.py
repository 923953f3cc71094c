"""Tell Looker that fresh data has landed (reset the model's datagroup, run scheduled plans once)
through the Looker API 4.0.

    freshbooks-looker refresh            # after every successful pipeline run (Meltano utility)

Plain ``requests``:

* ``POST /api/4.0/login`` with ``client_id`` / ``client_secret`` in a form body (Looker is
  deprecating credentials in the query string). The access token lives ``expires_in`` seconds
  (1 hour by default) and API3 keys have no refresh token: the client simply logs in again when
  the token is about to expire or a call answers 401.
* ``GET /api/4.0/datagroups``: find the datagroup by (model, name); its id is not its name.
* ``PATCH /api/4.0/datagroups/{id}`` with ``stale_before`` and ``triggered_at`` = now minus a few
  seconds (Looker rejects timestamps in the future, and clocks drift): cached results older than
  that are stale, PDTs and schedules bound to the datagroup run.
* ``GET /api/4.0/scheduled_plans?all_users=true`` (plans named in ``scheduled_plans``) and
  ``GET /api/4.0/scheduled_plans/dashboard/{id}`` / ``.../lookml_dashboard/{model::name}`` (every
  plan on the dashboards in ``scheduled_plan_dashboards``), then
  ``POST /api/4.0/scheduled_plans/{id}/run_once`` per plan: Looker copies the plan and delivers it
  now (email, Slack, S3, webhook: whatever its destinations say). Needs ``see_schedules`` and
  ``create_scheduled_plans``, or an admin key to reach other users' plans.
* ``POST /api/4.0/queries/run/json`` (``drift --looker``): an inline query with ``limit`` 5000;
  a result of 5,000 rows may be cut off and is an error (``run_query``).
* ``DELETE /api/4.0/logout``.

Looker's answers 429 (rate limited) and 502/503/504 raise ``LookerAPIError`` with
``retryable=True`` and the ``Retry-After`` Looker sent; ``freshbooks-looker post-load`` retries on
those (post_load.py).

Configuration (first match wins): command-line options, ``FRESHBOOKS_LOOKER_<SETTING>`` (what a
Meltano utility named ``freshbooks-looker`` exports), then the looker_sdk names ``LOOKERSDK_BASE_URL``,
``LOOKERSDK_CLIENT_ID``, ``LOOKERSDK_CLIENT_SECRET``, ``LOOKERSDK_VERIFY_SSL``, ``LOOKERSDK_TIMEOUT``.
With no base URL configured the command prints a notice and exits 0, so a pipeline without
Looker keeps working.

Minimal Looker permissions for the API user's role: ``see_datagroups`` and ``update_datagroups``
on the model set containing the ``freshbooks`` model (plus ``access_data`` for that model set).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import typing as t
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import quote

import requests

DEFAULT_MODEL = "freshbooks"
DEFAULT_DATAGROUP = "freshbooks_load"
#: log in again this many seconds before the token's stated expiry
EXPIRY_MARGIN = 60
#: stale_before / triggered_at are "now" minus this (Looker refuses future timestamps)
CLOCK_SKEW = 5
#: rows a Looker query returns at most (the limit this package asks for and respects)
ROW_LIMIT = 5000


#: Looker answers after which the same request can be sent again: rate limited, or the request
#: never reached a healthy Looker (502/503/504). A 500 may have done its work: not retried.
RETRY_STATUSES = frozenset({429, 502, 503, 504})


class LookerAPIError(Exception):
    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.status in RETRY_STATUSES


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After``: delta seconds or an HTTP date (RFC 9110 10.2.3); None when absent/garbled."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _csv(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


@dataclass
class Settings:
    base_url: str | None
    client_id: str | None
    client_secret: str | None
    model: str = DEFAULT_MODEL
    datagroup: str = DEFAULT_DATAGROUP
    verify_ssl: bool = True
    timeout: float = 60.0
    #: plan names or ids to run once after a load
    scheduled_plans: list[str] = field(default_factory=list)
    #: dashboards whose every plan runs once after a load: ids (user-defined) or model::name (LookML)
    scheduled_plan_dashboards: list[str] = field(default_factory=list)

    @classmethod
    def from_env(cls, env: t.Mapping[str, str] | None = None, **override: t.Any) -> Settings:
        env = os.environ if env is None else env

        def get(name: str, sdk: str | None = None) -> str | None:
            value = override.get(name)
            if value not in (None, ""):
                return str(value)
            value = env.get(f"FRESHBOOKS_LOOKER_{name.upper()}")
            if value not in (None, ""):
                return value
            return env.get(sdk) if sdk else None

        verify = get("verify_ssl", "LOOKERSDK_VERIFY_SSL")
        timeout = get("timeout", "LOOKERSDK_TIMEOUT")
        return cls(
            base_url=get("base_url", "LOOKERSDK_BASE_URL"),
            client_id=get("client_id", "LOOKERSDK_CLIENT_ID"),
            client_secret=get("client_secret", "LOOKERSDK_CLIENT_SECRET"),
            model=get("model") or DEFAULT_MODEL,
            datagroup=get("datagroup") or DEFAULT_DATAGROUP,
            verify_ssl=str(verify).lower() not in ("false", "0", "no") if verify is not None else True,
            timeout=float(timeout) if timeout else 60.0,
            scheduled_plans=_csv(get("scheduled_plans")),
            scheduled_plan_dashboards=_csv(get("scheduled_plan_dashboards")),
        )

    @property
    def configured(self) -> bool:
        return bool(self.base_url)

    def client(self) -> LookerClient:
        if not self.client_id or not self.client_secret:
            raise LookerAPIError(
                "Looker client_id and client_secret are required "
                "(FRESHBOOKS_LOOKER_CLIENT_ID / FRESHBOOKS_LOOKER_CLIENT_SECRET)"
            )
        return LookerClient(
            t.cast(str, self.base_url),
            self.client_id,
            self.client_secret,
            verify_ssl=self.verify_ssl,
            timeout=self.timeout,
        )


def api_root(base_url: str) -> str:
    """``https://x.cloud.looker.com`` or ``https://host:19999`` -> ``.../api/4.0``."""
    base = base_url.rstrip("/")
    if base.endswith("/api/4.0"):
        return base
    return base + "/api/4.0"


class LookerClient:
    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        verify_ssl: bool = True,
        timeout: float = 60.0,
        session: requests.Session | None = None,
        clock: t.Callable[[], float] = time.time,
    ):
        self.root = api_root(base_url)
        self._client_id = client_id
        self._client_secret = client_secret
        self.verify = verify_ssl
        self.timeout = timeout
        self.session = session or requests.Session()
        self.clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self.logins = 0

    # -- auth ----------------------------------------------------------------------------------
    def login(self) -> None:
        resp = self.session.post(
            f"{self.root}/login",
            data={"client_id": self._client_id, "client_secret": self._client_secret},
            timeout=self.timeout,
            verify=self.verify,
        )
        if resp.status_code != 200:
            raise _error(resp, "Looker login failed:")
        body = resp.json()
        self._token = body["access_token"]
        self._expires_at = self.clock() + float(body.get("expires_in") or 3600)
        self.logins += 1

    def logout(self) -> None:
        if self._token is None:
            return
        try:
            self.session.delete(
                f"{self.root}/logout", headers=self._auth(), timeout=self.timeout, verify=self.verify
            )
        finally:
            self._token = None

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"token {self._token}"}

    def request(self, method: str, path: str, **kwargs: t.Any) -> t.Any:
        if self._token is None or self.clock() >= self._expires_at - EXPIRY_MARGIN:
            self.login()  # API keys have no refresh token: a new login is the refresh
        resp = self.session.request(
            method,
            f"{self.root}{path}",
            headers=self._auth(),
            timeout=self.timeout,
            verify=self.verify,
            **kwargs,
        )
        if resp.status_code == 401:  # revoked or expired early: log in once more
            self.login()
            resp = self.session.request(
                method,
                f"{self.root}{path}",
                headers=self._auth(),
                timeout=self.timeout,
                verify=self.verify,
                **kwargs,
            )
        if resp.status_code >= 400:
            raise _error(resp, f"{method} {path}:")
        return resp.json() if resp.content else None

    def request_list(self, method: str, path: str, **kwargs: t.Any) -> list[dict[str, t.Any]]:
        """A request Looker answers with a JSON array of objects."""
        body = self.request(method, path, **kwargs)
        if not isinstance(body, list):
            raise LookerAPIError(f"{method} {path}: expected a JSON array, got {type(body).__name__}")
        return body

    def request_dict(self, method: str, path: str, **kwargs: t.Any) -> dict[str, t.Any]:
        """A request Looker answers with one JSON object."""
        body = self.request(method, path, **kwargs)
        if not isinstance(body, dict):
            raise LookerAPIError(f"{method} {path}: expected a JSON object, got {type(body).__name__}")
        return body

    # -- datagroups ----------------------------------------------------------------------------
    def datagroups(self) -> list[dict[str, t.Any]]:
        return self.request_list("GET", "/datagroups")

    def find_datagroup(self, model: str, name: str) -> dict[str, t.Any]:
        groups = self.datagroups()
        for dg in groups:
            if dg.get("model_name") == model and dg.get("name") == name:
                return dg
        known = ", ".join(sorted(f"{g.get('model_name')}::{g.get('name')}" for g in groups)) or "none"
        raise LookerAPIError(
            f"no datagroup {model}::{name} in Looker (known: {known}); is the "
            "LookML project deployed to production?"
        )

    def reset_datagroup(self, model: str, name: str) -> dict[str, t.Any]:
        dg = self.find_datagroup(model, name)
        stamp = int(self.clock()) - CLOCK_SKEW
        return self.request_dict(
            "PATCH", f"/datagroups/{dg['id']}", json={"stale_before": stamp, "triggered_at": stamp}
        )

    # -- queries -----------------------------------------------------------------------------
    def run_query(
        self,
        model: str,
        explore: str,
        fields: list[str],
        filters: dict[str, t.Any] | None = None,
        limit: int = ROW_LIMIT,
    ) -> list[dict[str, t.Any]]:
        """``POST /queries/run/json`` (run_inline_query) with an explicit limit. A result with
        ``limit`` rows may be cut off: that is an error, never a silently short answer."""
        rows = self.request_list(
            "POST",
            "/queries/run/json",
            json={
                "model": model,
                "view": explore,
                "fields": fields,
                "filters": filters or {},
                "limit": str(limit),
            },
        )
        if len(rows) >= limit:
            raise LookerAPIError(
                f"{model}::{explore} returned {len(rows):,} rows, Looker's {limit:,}-row query "
                "limit, so the answer may be cut off; read the warehouse directly instead "
                "(--duckdb FILE / --postgres DSN)"
            )
        return rows

    # -- scheduled plans -------------------------------------------------------------------------
    def scheduled_plans(self) -> list[dict[str, t.Any]]:
        """Every plan the key can see (all users' with an admin key / see_schedules)."""
        return self.request_list("GET", "/scheduled_plans", params={"all_users": "true"})

    def dashboard_plans(self, dashboard: str) -> list[dict[str, t.Any]]:
        """Plans on a user-defined dashboard (numeric id) or a LookML dashboard (``model::name``)."""
        kind = "lookml_dashboard" if "::" in dashboard else "dashboard"
        return self.request_list(
            "GET", f"/scheduled_plans/{kind}/{quote(dashboard, safe=':')}", params={"all_users": "true"}
        )

    def run_plan_once(self, plan_id: t.Any) -> dict[str, t.Any]:
        """Looker copies the plan and delivers it now; returns the copy."""
        return self.request_dict("POST", f"/scheduled_plans/{quote(str(plan_id), safe='')}/run_once")

    def __enter__(self) -> LookerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.logout()


def _error(resp: requests.Response, prefix: str) -> LookerAPIError:
    return LookerAPIError(
        f"{prefix} HTTP {resp.status_code} {_message(resp)}".rstrip(),
        resp.status_code,
        retry_after_seconds(resp.headers.get("Retry-After")),
    )


def _message(resp: requests.Response) -> str:
    try:
        return str(resp.json().get("message", ""))[:200]
    except ValueError:
        return resp.text[:200]


def refresh(settings: Settings, log: t.Callable[[str], None] = print) -> int:
    if not settings.base_url:
        log(
            "freshbooks-looker refresh: no Looker base URL configured "
            "(FRESHBOOKS_LOOKER_BASE_URL / LOOKERSDK_BASE_URL); skipping"
        )
        return 0
    if not settings.client_id or not settings.client_secret:
        log("freshbooks-looker refresh: Looker client_id and client_secret are required")
        return 2
    try:
        with settings.client() as client:
            result = client.reset_datagroup(settings.model, settings.datagroup)
    except (LookerAPIError, requests.RequestException) as exc:
        log(f"freshbooks-looker refresh: {exc}")
        return 1
    log(
        f"freshbooks-looker refresh: datagroup {settings.model}::{settings.datagroup} reset "
        f"(stale_before={result.get('stale_before') if isinstance(result, dict) else '?'})"
    )
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base-url", help="https://yourco.cloud.looker.com (or host:19999)")
    parser.add_argument("--client-id")
    parser.add_argument("--client-secret", help="prefer the environment for secrets")
    parser.add_argument("--model", help=f"LookML model (default {DEFAULT_MODEL})")
    parser.add_argument("--datagroup", help=f"datagroup name (default {DEFAULT_DATAGROUP})")


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env(
        base_url=args.base_url,
        client_id=args.client_id,
        client_secret=args.client_secret,
        model=args.model,
        datagroup=args.datagroup,
    )
    return refresh(settings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="freshbooks-looker refresh")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
