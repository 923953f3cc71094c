"""``freshbooks-looker post-load``: the steps that follow every successful load, as one command.

Every path that loads the warehouse runs it after the load: the Meltano jobs
(``tap-freshbooks target-duckdb freshbooks-looker:post_load``), the webhook bridge after its
webhook and poll runs, cron and CI. Steps, in this order (setting ``post_load_steps``,
comma-separated; default: every step that applies):

``timestamptz``
    PostgreSQL: the loader's ``timestamp`` columns become ``timestamptz`` (UTC). Applies when
    ``postgres_dsn`` is set. On Redshift, which cannot change a column's type, it is skipped
    with a notice (keep the Looker connection's time zone at UTC there).
``refresh``
    Reset the Looker datagroup (``freshbooks-looker refresh``). Applies when ``base_url`` is set.
``scheduled_plans``
    ``run_once`` every plan named (or numbered) in ``scheduled_plans`` and every plan on the
    dashboards in ``scheduled_plan_dashboards``. Applies when ``base_url`` and one of them are set.

Without Looker settings the Looker steps are logged no-ops, so a pipeline without Looker keeps
working. A step that fails is retried up to ``post_load_retries`` times (default 3) when the
failure can pass (Looker 429 / 502 / 503 / 504, a connection error): it waits what Looker's
``Retry-After`` says, else ``post_load_retry_seconds`` (default 2) doubled at each attempt. A plan
that already ran is not run again on a retry. A step that still fails is logged with one line and
the next step runs: nothing here touches the loaded data, so the load stands. Exit status: 0 when
every step ran or was skipped, 1 when a step finally failed, 2 for a configuration error.
"""

from __future__ import annotations

import argparse
import os
import time
import typing as t
from dataclasses import dataclass

import requests

from . import warehouse
from .looker_api import LookerAPIError, LookerClient, Settings

STEPS = ("timestamptz", "refresh", "scheduled_plans")
#: the longest Retry-After this command waits; a longer one fails the step (rerun later)
MAX_WAIT = 300.0


class ConfigError(Exception):
    """A setting that makes a step impossible; the message says which."""


@dataclass
class PostLoadSettings:
    looker: Settings
    steps: list[str] | None = None  # None: every step that applies
    postgres_dsn: str | None = None
    schema: str = "freshbooks"
    retries: int = 3
    retry_seconds: float = 2.0

    @classmethod
    def from_env(cls, env: t.Mapping[str, str] | None = None, **override: t.Any) -> PostLoadSettings:
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = override.get(name)
            if value in (None, ""):
                value = env.get(f"FRESHBOOKS_LOOKER_{name.upper()}")
            return None if value in (None, "") else str(value)

        steps = get("post_load_steps")
        try:
            retries = int(get("post_load_retries") or 3)
            retry_seconds = float(get("post_load_retry_seconds") or 2.0)
        except ValueError as exc:
            raise ConfigError(f"post_load_retries / post_load_retry_seconds must be numbers ({exc})") from exc
        return cls(
            looker=Settings.from_env(env),
            steps=[s.strip() for s in steps.split(",") if s.strip()] if steps else None,
            postgres_dsn=get("postgres_dsn"),
            schema=get("schema") or "freshbooks",
            retries=max(0, retries),
            retry_seconds=max(0.0, retry_seconds),
        )


class PostLoad:
    def __init__(
        self,
        settings: PostLoadSettings,
        log: t.Callable[[str], None] | None = None,
        sleep: t.Callable[[float], None] = time.sleep,
    ):
        self.settings = settings
        self.log = log or (lambda message: print(message, flush=True))
        self.sleep = sleep
        self._client: LookerClient | None = None
        self._plans_run: set[str] = set()  # plan ids already run: a retry does not deliver twice

    # -- which steps -------------------------------------------------------------------------
    def applies(self, step: str) -> str | None:
        """None when the step can run, else why it is skipped."""
        s = self.settings
        if step == "timestamptz":
            return None if s.postgres_dsn else "no postgres_dsn (the warehouse is not PostgreSQL)"
        if not s.looker.configured:
            return "no Looker base_url configured (FRESHBOOKS_LOOKER_BASE_URL / LOOKERSDK_BASE_URL)"
        if step == "scheduled_plans" and not (s.looker.scheduled_plans or s.looker.scheduled_plan_dashboards):
            return "no scheduled_plans or scheduled_plan_dashboards configured"
        return None

    def chosen(self) -> list[str]:
        steps = self.settings.steps
        if steps is None:
            return list(STEPS)
        unknown = [s for s in steps if s not in STEPS]
        if unknown:
            raise ConfigError(
                f"unknown post_load_steps {', '.join(unknown)} (choose from {', '.join(STEPS)})"
            )
        if "timestamptz" in steps and not self.settings.postgres_dsn:
            raise ConfigError(
                "post_load_steps names timestamptz but postgres_dsn is not set "
                "(FRESHBOOKS_LOOKER_POSTGRES_DSN)"
            )
        return [s for s in STEPS if s in steps]

    # -- running -----------------------------------------------------------------------------
    def run(self) -> int:
        try:
            steps = self.chosen()
        except ConfigError as exc:
            self.log(f"post-load: {exc}")
            return 2
        failed = []
        try:
            for step in steps:
                reason = self.applies(step)
                if reason:
                    self.log(f"post-load: {step}: skipped, {reason}")
                    continue
                if not self._run_step(step):
                    failed.append(step)
        finally:
            if self._client is not None:
                try:
                    self._client.logout()
                except (LookerAPIError, requests.RequestException):
                    pass
        if failed:
            self.log(
                f"post-load: {len(failed)} step(s) failed: {', '.join(failed)}. The load itself is "
                "kept; rerun `freshbooks-looker post-load` once the cause is fixed."
            )
            return 1
        return 0

    def _run_step(self, step: str) -> bool:
        action = getattr(self, f"step_{step}")
        attempts = self.settings.retries + 1
        for attempt in range(attempts):
            try:
                self.log(f"post-load: {step}: {action()}")
                return True
            except ConfigError as exc:
                self.log(f"post-load: {step} FAILED: {exc}")
                return False
            except Exception as exc:  # noqa: BLE001 - every failure is reported, none undoes the load
                wait, why = self._retry_wait(exc, attempt)
                message = " ".join(str(exc).split()) or type(exc).__name__
                if wait is None or attempt == attempts - 1:
                    tried = f" after {attempt + 1} attempts" if attempt else ""
                    self.log(f"post-load: {step} FAILED{tried}: {message}{why}")
                    return False
                self.log(
                    f"post-load: {step}: {message}; retry {attempt + 1} of {attempts - 1} in {wait:g} s{why}"
                )
                self.sleep(wait)
        return False  # pragma: no cover - the loop always returns

    def _retry_wait(self, exc: Exception, attempt: int) -> tuple[float | None, str]:
        backoff = self.settings.retry_seconds * 2**attempt
        if isinstance(exc, LookerAPIError):
            if not exc.retryable:
                return None, ""
            if exc.retry_after is not None:
                if exc.retry_after > MAX_WAIT:
                    return (
                        None,
                        f" (Looker asked to wait {exc.retry_after:g} s, over the {MAX_WAIT:g} s limit)",
                    )
                return exc.retry_after, " (Retry-After)"
            return backoff, ""
        if isinstance(exc, (requests.ConnectionError, requests.Timeout)) or warehouse.is_transient(exc):
            return backoff, ""
        return None, ""

    def client(self) -> LookerClient:
        if self._client is None:
            try:
                self._client = self.settings.looker.client()
            except LookerAPIError as exc:
                raise ConfigError(str(exc)) from exc
        return self._client

    # -- the steps ---------------------------------------------------------------------------
    def step_timestamptz(self) -> str:
        dsn = t.cast(str, self.settings.postgres_dsn)
        dialect = warehouse.postgres_dialect(dsn)
        if not dialect.converts_timestamptz:
            return f"skipped, {dialect.timestamps}"
        changed = warehouse.convert_timestamps_to_timestamptz(dsn, self.settings.schema, log=lambda _m: None)
        return f"{len(changed)} column(s) converted to timestamptz in schema {self.settings.schema}"

    def step_refresh(self) -> str:
        looker = self.settings.looker
        self.client().reset_datagroup(looker.model, looker.datagroup)
        return f"datagroup {looker.model}::{looker.datagroup} reset"

    def step_scheduled_plans(self) -> str:
        client, looker = self.client(), self.settings.looker
        plans: dict[str, str] = {}  # id -> name, in order
        missing: list[str] = []
        known: list[dict[str, t.Any]] = []
        if looker.scheduled_plans:
            known = client.scheduled_plans()
            for wanted in looker.scheduled_plans:
                found = [p for p in known if p.get("name") == wanted or str(p.get("id")) == wanted]
                if not found:
                    missing.append(f"no scheduled plan named {wanted!r}")
                plans.update((str(p["id"]), str(p.get("name"))) for p in found)
        for dashboard in looker.scheduled_plan_dashboards:
            found = client.dashboard_plans(dashboard)
            if not found:
                missing.append(f"dashboard {dashboard} has no scheduled plans")
            plans.update((str(p["id"]), str(p.get("name"))) for p in found)
        for plan_id in plans:
            if plan_id not in self._plans_run:
                client.run_plan_once(plan_id)
                self._plans_run.add(plan_id)
        ran = ", ".join(f"{name} (#{pid})" for pid, name in plans.items()) or "none"
        if missing:
            known_names = ""
            if looker.scheduled_plans:
                known_names = (
                    " (plans the key sees: "
                    + (", ".join(sorted({str(p.get("name")) for p in known})) or "none")
                    + ")"
                )
            raise ConfigError(f"ran {len(plans)} plan(s): {ran}; {'; '.join(missing)}{known_names}")
        return f"ran {len(plans)} plan(s) once: {ran}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--steps",
        help=f"comma-separated, from {', '.join(STEPS)} "
        "(default: env FRESHBOOKS_LOOKER_POST_LOAD_STEPS, else all that apply)",
    )
    parser.add_argument(
        "--postgres", help="PostgreSQL DSN for timestamptz (default: env FRESHBOOKS_LOOKER_POSTGRES_DSN)"
    )


def run(args: argparse.Namespace) -> int:
    try:
        settings = PostLoadSettings.from_env(post_load_steps=args.steps, postgres_dsn=args.postgres)
    except ConfigError as exc:
        print(f"post-load: {exc}", flush=True)
        return 2
    return PostLoad(settings).run()
