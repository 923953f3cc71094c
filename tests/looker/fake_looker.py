"""A local fake of the Looker API 4.0 endpoints the datagroup refresher uses (real HTTP on
127.0.0.1), with Looker's documented behaviour: form-body login, expiring access tokens with no
refresh, 401 on an unknown or expired token, datagroup timestamps that may not be in the future,
logout that revokes the token; scheduled plans (list, per dashboard, run_once by id, a plan of
another user seen only with all_users=true); and injected failures (``fail``: 429 with
Retry-After, 5xx) consumed in order by the requests they match."""

from __future__ import annotations

import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from freshbooks_emulator.issued_secrets import record as record_secret


class FakeLooker:
    #: the most rows this fake answers a query with, whatever limit is asked (Looker's 5,000)
    ROW_CAP = 5000

    def __init__(
        self,
        client_id: str = "looker-id",
        client_secret: str = "looker-secret",
        token_ttl: int = 3600,
        clock_offset: float = 0.0,
        warehouse=None,
        project_dir=None,
    ):
        self.client_id, self.client_secret = client_id, record_secret("looker_client_secret", client_secret)
        self.token_ttl = token_ttl
        self.clock_offset = clock_offset  # server clock = real clock + offset
        self.tokens: dict[str, float] = {}  # token -> expiry (server clock)
        self.calls: list[dict] = []
        self.datagroups = [
            {
                "id": "3",
                "model_name": "other_model",
                "name": "freshbooks_load",
                "stale_before": 0,
                "triggered_at": 0,
            },
            {
                "id": "7",
                "model_name": "freshbooks",
                "name": "freshbooks_load",
                "stale_before": 0,
                "triggered_at": 0,
                "trigger_value": "x",
            },
        ]
        #: plans of the API user (user 1) and one of another user (all_users=true only)
        self.scheduled_plans = [
            {
                "id": 11,
                "name": "Daily revenue",
                "user_id": 1,
                "lookml_dashboard_id": "freshbooks::revenue",
                "dashboard_id": None,
            },
            {
                "id": 12,
                "name": "AR aging to finance",
                "user_id": 1,
                "lookml_dashboard_id": "freshbooks::receivables_aging",
                "dashboard_id": None,
            },
            {"id": 13, "name": "Board pack", "user_id": 1, "lookml_dashboard_id": None, "dashboard_id": 42},
            {
                "id": 14,
                "name": "Board pack CSV",
                "user_id": 2,
                "lookml_dashboard_id": None,
                "dashboard_id": 42,
            },
        ]
        self.runs: list[int] = []  # plan ids run once, in order
        self.faults: list[dict] = []
        #: ``POST /queries/run/json`` runs the explore's SQL (the offline checker's emulation of
        #: Looker's SQL) on this warehouse (freshbooks_looker.warehouse.Warehouse)
        self.warehouse, self.project_dir = warehouse, project_dir
        self._query_lock = threading.Lock()
        self._project = None
        self._server: ThreadingHTTPServer | None = None
        self.url = ""

    def now(self) -> float:
        return time.time() + self.clock_offset

    def revoke_all(self) -> None:
        self.tokens.clear()

    def run_query(self, body: dict) -> tuple[int, object]:
        """An inline query (model, view = explore, fields, filters incl. parameters, limit)."""
        # the dev extra (lookml, sqlgen) only when a test runs a query: the runtime tests use the fake without it
        from freshbooks_looker.lookml import Project  # noqa: PLC0415
        from freshbooks_looker.sqlgen import Dialect, ExploreSQL, LookMLError  # noqa: PLC0415

        if self._project is None:
            self._project = Project(self.project_dir)
        project = self._project
        explore = project.explores.get(body.get("view", ""))
        if explore is None:
            return 404, {"message": f"explore {body.get('view')} not found"}
        limit = int(body.get("limit") or 500)
        limit = self.ROW_CAP if limit < 0 else min(limit, self.ROW_CAP)
        params, filters = {}, {}
        for key, value in (body.get("filters") or {}).items():
            alias, _, name = key.partition(".")
            view = project.views.get(explore.aliases().get(alias, ""))
            (params if view is not None and name in view.parameters else filters)[key] = value
        try:
            compiled = ExploreSQL(project, explore, Dialect("duckdb"), params).compile(
                body.get("fields") or [], filters, None, limit
            )
        except LookMLError as exc:
            return 422, {"message": str(exc)}
        with self._query_lock:
            rows = self.warehouse.query(compiled.sql)
        return 200, [dict(zip(compiled.columns, row, strict=True)) for row in rows]

    def fail(
        self, method: str, path: str, status: int, *, retry_after: str | None = None, times: int = 1
    ) -> None:
        """The next ``times`` requests ``method path`` (path under /api/4.0) answer ``status``."""
        for _ in range(times):
            self.faults.append({"method": method, "path": path, "status": status, "retry_after": retry_after})

    def start(self) -> FakeLooker:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _reply(self, status: int, body=None, headers: dict | None = None) -> None:
                data = b"" if body is None else json.dumps(body, default=str).encode()
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode() if length else ""
                call = {
                    "method": self.command,
                    "path": parts.path,
                    "query": parts.query,
                    "auth": self.headers.get("Authorization"),
                    "content_type": self.headers.get("Content-Type"),
                    "body": raw,
                }
                fake.calls.append(call)
                path = parts.path
                if not path.startswith("/api/4.0/"):
                    return self._reply(404, {"message": "Not found"})
                path = path[len("/api/4.0") :]
                fault = next(
                    (f for f in fake.faults if f["method"] == self.command and f["path"] == path), None
                )
                if fault is not None:
                    fake.faults.remove(fault)
                    call["status"] = fault["status"]
                    return self._reply(
                        fault["status"],
                        {"message": "injected"},
                        {"Retry-After": fault["retry_after"]} if fault["retry_after"] else None,
                    )
                if path == "/login" and self.command == "POST":
                    form = {k: v[0] for k, v in parse_qs(raw).items()}
                    if "client_secret" in parse_qs(parts.query):
                        return self._reply(400, {"message": "credentials in the query string"})
                    if (
                        form.get("client_id") != fake.client_id
                        or form.get("client_secret") != fake.client_secret
                    ):
                        return self._reply(404, {"message": "Not found"})
                    token = record_secret("looker_access_token", secrets.token_hex(12))
                    fake.tokens[token] = fake.now() + fake.token_ttl
                    return self._reply(
                        200,
                        {
                            "access_token": token,
                            "token_type": "Bearer",
                            "expires_in": fake.token_ttl,
                            "refresh_token": None,
                        },
                    )
                auth = (self.headers.get("Authorization") or "").split()
                token = auth[1] if len(auth) == 2 and auth[0].lower() in ("token", "bearer") else None
                if token is None or fake.tokens.get(token, 0) < fake.now():
                    return self._reply(401, {"message": "Requires authentication."})
                if path == "/logout" and self.command == "DELETE":
                    fake.tokens.pop(token, None)
                    return self._reply(204)
                if path == "/datagroups" and self.command == "GET":
                    return self._reply(200, fake.datagroups)
                if path.startswith("/datagroups/") and self.command == "PATCH":
                    dg = next((d for d in fake.datagroups if d["id"] == path.rsplit("/", 1)[1]), None)
                    if dg is None:
                        return self._reply(404, {"message": "Not found"})
                    body = json.loads(raw or "{}")
                    for key in ("stale_before", "triggered_at"):
                        if key in body:
                            if not isinstance(body[key], int) or body[key] > fake.now():
                                return self._reply(422, {"message": f"{key} cannot be in the future"})
                            dg[key] = body[key]
                    return self._reply(200, dg)
                all_users = parse_qs(parts.query).get("all_users") == ["true"]
                visible = [p for p in fake.scheduled_plans if all_users or p["user_id"] == 1]
                if path == "/scheduled_plans" and self.command == "GET":
                    return self._reply(200, visible)
                if path.startswith("/scheduled_plans/dashboard/") and self.command == "GET":
                    wanted = path.rsplit("/", 1)[1]
                    return self._reply(200, [p for p in visible if str(p["dashboard_id"]) == wanted])
                if path.startswith("/scheduled_plans/lookml_dashboard/") and self.command == "GET":
                    wanted = unquote(path.rsplit("/", 1)[1])
                    return self._reply(200, [p for p in visible if p["lookml_dashboard_id"] == wanted])
                if path == "/queries/run/json" and self.command == "POST" and fake.warehouse is not None:
                    return self._reply(*fake.run_query(json.loads(raw or "{}")))
                if (
                    path.startswith("/scheduled_plans/")
                    and path.endswith("/run_once")
                    and self.command == "POST"
                ):
                    plan = next((p for p in fake.scheduled_plans if str(p["id"]) == path.split("/")[2]), None)
                    if plan is None:
                        return self._reply(404, {"message": "Not found"})
                    fake.runs.append(plan["id"])
                    return self._reply(200, {**plan, "id": 1000 + len(fake.runs), "run_once": True})
                return self._reply(404, {"message": "Not found"})

            do_GET = do_POST = do_PATCH = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def endpoints(self) -> list[tuple[str, str]]:
        return [(c["method"], c["path"]) for c in self.calls]
