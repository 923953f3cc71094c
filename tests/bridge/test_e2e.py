"""End to end: FreshBooks emulator -> signed webhooks -> webhook-bridge -> tap -> DuckDB -> Looker.

One emulator, one fake Looker, one isolated Meltano project (its own system DB, state and run dir;
the plugin venvs of the repository's `.meltano` are reused through symlinks) and one real bridge
process on 127.0.0.1 for the whole module, in the bridge's default run mode (direct: Meltano
resolved once, the tap and the loader from their venvs, state through Meltano's state backend).
After every successful run the bridge runs `freshbooks-looker:post_load`, whose datagroup reset
reaches the fake Looker. The tests run in order and each ends by comparing the warehouse with the
emulator's truth: every invoice with its current `notes` and `vis_state`, once.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bridge.helpers import REPO, BridgeServer, children, cli, free_port, wait_for
from looker.fake_looker import FakeLooker

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

tap_token_store = pytest.importorskip(
    "freshbooks_auth.token_store", reason="freshbooks-auth is not importable"
)
emulator_mod = pytest.importorskip("freshbooks_emulator", reason="the FreshBooks emulator is not available")
duckdb = pytest.importorskip("duckdb", reason="duckdb is not installed")

MELTANO = Path(sys.executable).with_name("meltano")
PLUGINS = REPO / ".meltano"
if not (
    MELTANO.exists()
    and (PLUGINS / "extractors" / "tap-freshbooks").is_dir()
    and (PLUGINS / "loaders" / "target-duckdb").is_dir()
):
    pytest.skip("Meltano plugins are not installed: run scripts/setup", allow_module_level=True)

KEY = "Z9-YCWqom_shcJfmiPesSB3Lz5ok9CuMVoJclbB9hMM="  # test-only Fernet key
EVENTS = ["invoice", "client", "payment"]


class World:
    """The emulator, the Meltano project and the bridge (restartable)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.emu = emulator_mod.FreshBooksEmulator(seed="small").start()
        self.account = self.emu.accounts[0]["account_id"]
        self.project = root / "project"
        self.project.mkdir()
        shutil.copy(REPO / "meltano.yml", self.project / "meltano.yml")
        (self.project / "tap-freshbooks").symlink_to(REPO / "tap-freshbooks")
        (self.project / ".meltano").mkdir()
        for kind in ("extractors", "loaders", "utilities"):
            (self.project / ".meltano" / kind).symlink_to(PLUGINS / kind)
        self.looker = FakeLooker().start()
        (self.project / "output").mkdir()
        self.duckdb_path = self.project / "output" / "warehouse.duckdb"
        token_path = root / "tokens.fernet"
        grant = self.emu.issue_grant()
        tap_token_store.TokenStore(token_path, KEY).save(tap_token_store.TokenSet.from_token_response(grant))
        self.port = free_port()
        self.env = {
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "TAP_FRESHBOOKS_CLIENT_ID": self.emu.client_id,
            "TAP_FRESHBOOKS_CLIENT_SECRET": self.emu.client_secret,
            "TAP_FRESHBOOKS_REDIRECT_URI": self.emu.redirect_uri,
            "TAP_FRESHBOOKS_API_URL": self.emu.url,
            "TAP_FRESHBOOKS_AUTH_URL": self.emu.url,
            "TAP_FRESHBOOKS_TOKEN_STORE_PATH": str(token_path),
            "TAP_FRESHBOOKS_TOKEN_ENCRYPTION_KEY": KEY,
            "WEBHOOK_BRIDGE_TOKEN_ENCRYPTION_KEY": KEY,
            "WEBHOOK_BRIDGE_TOKEN_STORE_PATH": str(token_path),
            "WEBHOOK_BRIDGE_CLIENT_ID": self.emu.client_id,
            "WEBHOOK_BRIDGE_CLIENT_SECRET": self.emu.client_secret,
            "WEBHOOK_BRIDGE_API_URL": self.emu.url,
            "WEBHOOK_BRIDGE_PROJECT_ROOT": str(self.project),
            "WEBHOOK_BRIDGE_DATA_DIR": str(root / "bridge"),
            "WEBHOOK_BRIDGE_MELTANO_EXECUTABLE": str(MELTANO),
            "WEBHOOK_BRIDGE_LOADER": "target-duckdb",
            "WEBHOOK_BRIDGE_COALESCE_WINDOW_SECONDS": "0.5",
            "WEBHOOK_BRIDGE_RETRY_BASE_SECONDS": "1",
            "WEBHOOK_BRIDGE_RETRY_MAX_SECONDS": "5",
            "WEBHOOK_BRIDGE_BUSY_RETRY_SECONDS": "2",
            "WEBHOOK_BRIDGE_POLL_INTERVAL": "3600",  # first poll at start = the initial load
            "WEBHOOK_BRIDGE_LOG_LEVEL": "DEBUG",
            "WEBHOOK_BRIDGE_POST_LOAD_RETRY_SECONDS": "1",
            # the post-load steps' Looker: the datagroup reset goes to the fake
            "FRESHBOOKS_LOOKER_BASE_URL": self.looker.url,
            "FRESHBOOKS_LOOKER_CLIENT_ID": self.looker.client_id,
            "FRESHBOOKS_LOOKER_CLIENT_SECRET": self.looker.client_secret,
            "FRESHBOOKS_LOOKER_POST_LOAD_RETRIES": "0",  # a failed step is the bridge's to retry
        }
        self.server: BridgeServer | None = None
        self.starts = 0

    # -- bridge -------------------------------------------------------------------------------
    def start_bridge(self) -> BridgeServer:
        self.starts += 1
        self.server = BridgeServer(self.env, log_path=self.root / f"bridge-{self.starts}.log", port=self.port)
        return self.server.start(timeout=60)

    def cli(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        return cli(
            {**self.env, "WEBHOOK_BRIDGE_PUBLIC_URL": f"http://127.0.0.1:{self.port}"}, *args, timeout=timeout
        )

    def store(self):
        from webhook_bridge.store import Store

        return Store(self.root / "bridge" / "bridge.sqlite3", KEY)

    def queue_idle(self) -> bool:
        store = self.store()
        try:
            stats = store.stats()
            last_poll = store.last_run("poll")
            return (
                stats["pending"] == 0
                and stats["running"] == 0
                and last_poll is not None
                and last_poll.status != "running"
            )
        finally:
            store.close()

    # -- warehouse ----------------------------------------------------------------------------
    def query(self, sql: str) -> list[tuple]:
        """Read DuckDB while holding the bridge's run lock (no run writes meanwhile)."""
        from webhook_bridge.run_lock import RunLock

        lock = RunLock(self.root / "bridge" / "run.lock")
        assert lock.acquire(timeout=300)
        try:
            con = duckdb.connect(str(self.duckdb_path), read_only=True)
            try:
                return con.execute(sql).fetchall()
            finally:
                con.close()
        finally:
            lock.release()

    def warehouse_invoices(self) -> dict[str, tuple]:
        rows = self.query(
            "select id, coalesce(notes, ''), vis_state from freshbooks.invoices "
            f"where account_id = '{self.account}'"
        )
        return {str(r[0]): (r[1], int(r[2])) for r in rows}

    def truth_invoices(self) -> dict[str, tuple]:
        return {
            str(r["id"]): (r.get("notes") or "", int(r["vis_state"]))
            for r in self.emu.truth("invoices", self.account)
        }

    def duplicates(self) -> list[tuple]:
        out = []
        for table, key in (
            ("invoices", "account_id, id"),
            ("invoice_lines", "account_id, invoice_id, id"),
            ("clients", "account_id, id"),
            ("payments", "account_id, id"),
        ):
            try:
                out += self.query(
                    f"select '{table}', {key}, count(*) from freshbooks.{table} "
                    f"group by {key} having count(*) > 1"
                )
            except duckdb.Error as exc:  # the line table's parent key may be named differently
                if "invoice_id" not in str(exc):
                    raise
                out += self.query(
                    f"select '{table}', account_id, id, count(*) from freshbooks.{table} "
                    f"group by all having count(*) > 1"
                )
        return out

    def assert_exact(self) -> None:
        assert self.warehouse_invoices() == self.truth_invoices()
        assert self.duplicates() == []

    def datagroup_resets(self) -> int:
        return sum(
            1
            for c in self.looker.calls
            if c["method"] == "PATCH"
            and c["path"].startswith("/api/4.0/datagroups/")
            and c.get("status") is None
        )

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
        self.emu.stop()
        self.looker.stop()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = World(tmp_path_factory.mktemp("e2e"))
    try:
        w.start_bridge()
        wait_for(w.queue_idle, timeout=180, interval=0.5, message="initial poll")
        store = w.store()
        assert store.last_run("poll").status == "succeeded", store.last_run("poll")
        store.close()
        registered = w.cli("register", "--events", *EVENTS, "--account", w.account, "--wait", "30")
        assert registered.returncode == 0, registered.stdout + registered.stderr
        yield w
    finally:
        w.close()


def invoice_ids(w: World) -> list[int]:
    return sorted(int(r["id"]) for r in w.emu.truth("invoices", w.account) if int(r["vis_state"]) == 0)


def test_initial_poll_loaded_the_truth(world):
    world.assert_exact()
    # the poll ran in direct mode and was followed by the post-load steps: Looker's datagroup reset
    wait_for(
        lambda: world.datagroup_resets() >= 1,
        timeout=60,
        interval=0.3,
        message="datagroup reset after the poll",
    )
    polls = [ln for ln in world.server.log_lines() if ln.get("msg") == "poll succeeded"]
    assert polls and polls[0]["mode"] == "direct", polls
    assert any(ln.get("msg") == "post-load succeeded" for ln in world.server.log_lines())


def test_change_reaches_the_warehouse_within_seconds_once(world):
    target = invoice_ids(world)[0]
    world.emu.update("invoices", world.account, target, notes="changed by webhook 1")
    sent = time.monotonic()
    assert world.emu.deliver_event(world.account, "invoice.update", target) == [200] * 1
    resets = world.datagroup_resets()
    wait_for(
        lambda: world.warehouse_invoices().get(str(target), ("",))[0] == "changed by webhook 1",
        timeout=60,
        interval=0.3,
        message="the change in DuckDB",
    )
    latency = time.monotonic() - sent
    assert latency < 30, latency
    runs = [
        ln
        for ln in world.server.log_lines()
        if ln.get("msg") == "run succeeded" and ln.get("kind") == "webhook"
    ]
    assert (
        runs and runs[-1]["mode"] == "direct" and set(runs[-1]["phases_s"]) >= {"state_get", "tap_and_target"}
    )
    wait_for(
        lambda: world.datagroup_resets() > resets,
        timeout=60,
        interval=0.3,
        message="datagroup reset after the webhook run",
    )
    [(trigger, received)] = world.query(
        f"select _fb_trigger, _fb_event_received_at from freshbooks.invoices "
        f"where account_id = '{world.account}' and id = '{target}'"
    )
    assert trigger == "webhook" and received is not None
    world.assert_exact()


def test_redelivered_out_of_order_and_create_after_update(world):
    ids = invoice_ids(world)
    a, b = ids[1], ids[2]
    world.emu.update("invoices", world.account, a, notes="a v2")
    for _ in range(3):  # the same event three times
        assert world.emu.deliver_event(world.account, "invoice.update", a) == [200]
    world.emu.update("invoices", world.account, b, notes="b v2")
    world.emu.update("invoices", world.account, b, notes="b v3")
    created = world.emu.create(
        "invoices", world.account, notes="brand new", lines=[{"name": "X", "qty": 1, "unit_cost": "10.00"}]
    )
    new_id = created.get("id") or created.get("invoiceid")
    world.emu.delete("invoices", world.account, ids[3])
    # out of order: the delete and the update arrive before the create, b's events reversed
    for name, object_id in (
        ("invoice.delete", ids[3]),
        ("invoice.update", new_id),
        ("invoice.update", b),
        ("invoice.create", new_id),
        ("invoice.create", b),
        ("invoice.update", b),
    ):
        assert world.emu.deliver_event(world.account, name, object_id) == [200]
    wait_for(world.queue_idle, timeout=120, interval=0.3, message="queue drained")
    world.assert_exact()
    assert world.warehouse_invoices()[str(new_id)] == ("brand new", 0)
    # its line came with it: the bridge sent only record_ids for invoices, the tap added the lines
    assert world.query(
        "select name, _fb_trigger from freshbooks.invoice_lines "
        f"where account_id = '{world.account}' and invoice_id = '{new_id}'"
    ) == [("X", "webhook")]
    assert world.warehouse_invoices()[str(ids[3])][1] == 1  # the deletion is kept, vis_state 1


def test_dropped_webhooks_are_caught_by_the_next_poll(world):
    ids = invoice_ids(world)[:10]
    for n, object_id in enumerate(ids):
        world.emu.update("invoices", world.account, object_id, notes=f"batch {n}")
    delivered = [i for n, i in enumerate(ids) if n % 5 != 0]  # drop 20%
    for object_id in delivered:
        assert world.emu.deliver_event(world.account, "invoice.update", object_id) == [200]
    wait_for(world.queue_idle, timeout=120, interval=0.3, message="queue drained")
    missing = [i for i in ids if i not in delivered]
    assert all(world.warehouse_invoices()[str(i)][0] != world.truth_invoices()[str(i)][0] for i in missing)
    polled = world.cli("poll")  # same as the scheduled poll, under the same run lock
    assert polled.returncode == 0, polled.stderr[-3000:]
    world.assert_exact()
    triggers = dict(
        world.query(
            "select id, _fb_trigger from freshbooks.invoices "
            f"where account_id = '{world.account}' and id in ({', '.join(repr(str(i)) for i in ids)})"
        )
    )
    # the poll sent only what the webhooks missed; what a webhook run loaded unchanged was not re-sent
    assert {i for i in ids if triggers[str(i)] == "poll"} == set(missing)


def test_failing_post_load_step_is_retried_and_the_load_stays(world):
    """Looker answers 500 twice: the post-load command fails, the bridge retries it, the load stands."""
    target = invoice_ids(world)[5]
    resets = world.datagroup_resets()
    failed_before = sum(
        1 for ln in world.server.log_lines() if ln.get("msg", "").startswith("post-load failed")
    )
    world.looker.fail("PATCH", "/datagroups/7", 500, times=2)
    world.emu.update("invoices", world.account, target, notes="loaded while Looker is down")
    assert world.emu.deliver_event(world.account, "invoice.update", target) == [200]
    wait_for(
        lambda: world.datagroup_resets() > resets,
        timeout=120,
        interval=0.3,
        message="datagroup reset after two failed attempts",
    )
    lines = world.server.log_lines()
    failed = [ln for ln in lines if ln.get("msg", "").startswith("post-load failed")][failed_before:]
    assert len(failed) == 2, failed
    assert world.warehouse_invoices()[str(target)][0] == "loaded while Looker is down"
    store = world.store()
    try:
        assert store.stats()["pending"] == 0 and not store.events("parked")
        webhook_runs = [r for r in store.runs(limit=5) if r.kind == "webhook"]
        assert webhook_runs[0].status == "succeeded"  # the load was never marked failed
    finally:
        store.close()
    world.assert_exact()
    # `webhook-bridge poll` runs the post-load steps after its poll too
    resets = world.datagroup_resets()
    polled = world.cli("poll")
    assert polled.returncode == 0, polled.stderr[-3000:]
    assert world.datagroup_resets() == resets + 1


def update_and_wait_for_its_run(world, target: int, notes: str, *, interval: float):
    """Change invoice ``target``, deliver its webhook, and wait until the bridge starts the run for it:
    (the open store, the last run id before it, that run)."""
    world.emu.update("invoices", world.account, target, notes=notes)
    store = world.store()
    before = max((r.id for r in store.runs(limit=1)), default=0)
    assert world.emu.deliver_event(world.account, "invoice.update", target) == [200]
    run = wait_for(
        lambda: next((r for r in store.runs(limit=3) if r.id > before and r.pid), None),
        timeout=30,
        interval=interval,
        message="run started",
    )
    return store, before, run


def test_loader_killed_during_a_direct_run_is_retried_and_ends_exact(world):
    """kill -9 of target-duckdb under the run supervisor: the run fails, nothing is marked done,
    the retry loads the change once."""
    target = invoice_ids(world)[-1]
    store, before, run = update_and_wait_for_its_run(world, target, "after the loader died", interval=0.02)
    loaders = [
        c for c in children(run.pid) if "target-duckdb" in Path(f"/proc/{c}/cmdline").read_bytes().decode()
    ]
    assert loaders, "the supervisor's loader process"
    os.kill(loaders[0], signal.SIGKILL)
    wait_for(
        lambda: world.warehouse_invoices().get(str(target), ("",))[0] == "after the loader died",
        timeout=120,
        interval=0.3,
        message="loaded by the retry",
    )
    wait_for(world.queue_idle, timeout=120, interval=0.3, message="queue drained")
    runs = {r.id: r for r in store.runs(limit=10) if r.id > before}
    store.close()
    assert runs[run.id].status == "failed" and runs[run.id].exit_code != 0, runs[run.id]
    assert any(r.status == "succeeded" for r in runs.values())
    world.assert_exact()


def test_kill9_during_a_tap_run_still_ends_exact(world):
    """Bridge and meltano die mid-run (machine crash); after the restart the events are retried."""
    target = invoice_ids(world)[4]
    store, _before, run = update_and_wait_for_its_run(world, target, "survives a crash", interval=0.05)
    time.sleep(1.0)  # inside the tap run
    world.server.kill9()
    try:
        os.killpg(run.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    store.close()
    world.start_bridge()
    wait_for(
        lambda: world.warehouse_invoices().get(str(target), ("",))[0] == "survives a crash",
        timeout=120,
        interval=0.5,
        message="retried after the crash",
    )
    wait_for(world.queue_idle, timeout=120, interval=0.3, message="queue drained")
    world.assert_exact()
