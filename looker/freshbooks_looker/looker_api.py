"""Tell Looker that fresh data has landed: reset the model's datagroup through the Looker API 4.0.

    freshbooks-looker refresh            # after every successful pipeline run (Meltano utility)

Plain ``requests``, five endpoints:

* ``POST /api/4.0/login`` with ``client_id`` / ``client_secret`` in a form body (Looker is
  deprecating credentials in the query string). The access token lives ``expires_in`` seconds
  (1 hour by default) and API3 keys have no refresh token: the client simply logs in again when
  the token is about to expire or a call answers 401.
* ``GET /api/4.0/datagroups``: find the datagroup by (model, name); its id is not its name.
* ``PATCH /api/4.0/datagroups/{id}`` with ``stale_before`` and ``triggered_at`` = now minus a few
  seconds (Looker rejects timestamps in the future, and clocks drift): cached results older than
  that are stale, PDTs and schedules bound to the datagroup run.
* ``DELETE /api/4.0/logout``.

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
from dataclasses import dataclass

import requests

DEFAULT_MODEL = "freshbooks"
DEFAULT_DATAGROUP = "freshbooks_load"
#: log in again this many seconds before the token's stated expiry
EXPIRY_MARGIN = 60
#: stale_before / triggered_at are "now" minus this (Looker refuses future timestamps)
CLOCK_SKEW = 5


class LookerAPIError(Exception):
    pass


@dataclass
class Settings:
    base_url: str | None
    client_id: str | None
    client_secret: str | None
    model: str = DEFAULT_MODEL
    datagroup: str = DEFAULT_DATAGROUP
    verify_ssl: bool = True
    timeout: float = 60.0

    @classmethod
    def from_env(cls, env: t.Mapping[str, str] | None = None, **override: t.Any) -> Settings:
        env = os.environ if env is None else env

        def get(name: str, sdk: str | None = None) -> str | None:
            value = override.get(name)
            if value not in (None, ""):
                return value
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
        )


def api_root(base_url: str) -> str:
    """``https://x.cloud.looker.com`` or ``https://host:19999`` -> ``.../api/4.0``."""
    base = base_url.rstrip("/")
    if base.endswith("/api/4.0"):
        return base
    return base + "/api/4.0"


class LookerClient:
    def __init__(self, base_url: str, client_id: str, client_secret: str, *, verify_ssl: bool = True,
                 timeout: float = 60.0, session: requests.Session | None = None,
                 clock: t.Callable[[], float] = time.time):
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
            timeout=self.timeout, verify=self.verify,
        )
        if resp.status_code != 200:
            raise LookerAPIError(f"Looker login failed: HTTP {resp.status_code} {_message(resp)}")
        body = resp.json()
        self._token = body["access_token"]
        self._expires_at = self.clock() + float(body.get("expires_in") or 3600)
        self.logins += 1

    def logout(self) -> None:
        if self._token is None:
            return
        try:
            self.session.delete(f"{self.root}/logout", headers=self._auth(), timeout=self.timeout,
                                verify=self.verify)
        finally:
            self._token = None

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"token {self._token}"}

    def request(self, method: str, path: str, **kwargs: t.Any) -> t.Any:
        if self._token is None or self.clock() >= self._expires_at - EXPIRY_MARGIN:
            self.login()  # API keys have no refresh token: a new login is the refresh
        resp = self.session.request(method, f"{self.root}{path}", headers=self._auth(),
                                    timeout=self.timeout, verify=self.verify, **kwargs)
        if resp.status_code == 401:  # revoked or expired early: log in once more
            self.login()
            resp = self.session.request(method, f"{self.root}{path}", headers=self._auth(),
                                        timeout=self.timeout, verify=self.verify, **kwargs)
        if resp.status_code >= 400:
            raise LookerAPIError(f"{method} {path}: HTTP {resp.status_code} {_message(resp)}")
        return resp.json() if resp.content else None

    # -- datagroups ----------------------------------------------------------------------------
    def datagroups(self) -> list[dict]:
        return self.request("GET", "/datagroups")

    def find_datagroup(self, model: str, name: str) -> dict:
        groups = self.datagroups()
        for dg in groups:
            if dg.get("model_name") == model and dg.get("name") == name:
                return dg
        known = ", ".join(sorted(f"{g.get('model_name')}::{g.get('name')}" for g in groups)) or "none"
        raise LookerAPIError(f"no datagroup {model}::{name} in Looker (known: {known}); is the "
                             "LookML project deployed to production?")

    def reset_datagroup(self, model: str, name: str) -> dict:
        dg = self.find_datagroup(model, name)
        stamp = int(self.clock()) - CLOCK_SKEW
        return self.request("PATCH", f"/datagroups/{dg['id']}",
                            json={"stale_before": stamp, "triggered_at": stamp})

    def __enter__(self) -> LookerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.logout()


def _message(resp: requests.Response) -> str:
    try:
        return str(resp.json().get("message", ""))[:200]
    except ValueError:
        return resp.text[:200]


def refresh(settings: Settings, log: t.Callable[[str], None] = print) -> int:
    if not settings.base_url:
        log("freshbooks-looker refresh: no Looker base URL configured "
            "(FRESHBOOKS_LOOKER_BASE_URL / LOOKERSDK_BASE_URL); skipping")
        return 0
    if not settings.client_id or not settings.client_secret:
        log("freshbooks-looker refresh: Looker client_id and client_secret are required")
        return 2
    try:
        with LookerClient(settings.base_url, settings.client_id, settings.client_secret,
                          verify_ssl=settings.verify_ssl, timeout=settings.timeout) as client:
            result = client.reset_datagroup(settings.model, settings.datagroup)
    except (LookerAPIError, requests.RequestException) as exc:
        log(f"freshbooks-looker refresh: {exc}")
        return 1
    log(f"freshbooks-looker refresh: datagroup {settings.model}::{settings.datagroup} reset "
        f"(stale_before={result.get('stale_before') if isinstance(result, dict) else '?'})")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base-url", help="https://yourco.cloud.looker.com (or host:19999)")
    parser.add_argument("--client-id")
    parser.add_argument("--client-secret", help="prefer the environment for secrets")
    parser.add_argument("--model", help=f"LookML model (default {DEFAULT_MODEL})")
    parser.add_argument("--datagroup", help=f"datagroup name (default {DEFAULT_DATAGROUP})")


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env(base_url=args.base_url, client_id=args.client_id,
                                 client_secret=args.client_secret, model=args.model,
                                 datagroup=args.datagroup)
    return refresh(settings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="freshbooks-looker refresh")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
