"""The trial kinds: one fault each, then one normal run, then the verdict.

Every trial: random FreshBooks changes (seeded), the fault, one normal ``meltano run`` (no fault),
then ``reconcile`` plus the check against the emulator (checks.py) must find 0 missing, 0 extra,
0 duplicate and 0 stale rows. Where the run after the fault starts from a state that already holds
every change (the faulted run completed), it is a steady-state run: it must re-send 0 rows.

A failed trial describes itself well enough to reproduce: seed, kind, trial number, the request
number and label of each kill, the changes applied (``TrialResult.describe``).
"""

from __future__ import annotations

import dataclasses
import random
import time
import types
import typing as t

from chaos import checks, processes
from chaos.changes import Change
from chaos.requests_hook import Recorder, Trigger
from freshbooks_emulator.faults import TransportFault
from webhook_bridge.commands import build_env
from webhook_bridge.events import EVENT_STREAMS

if t.TYPE_CHECKING:
    from chaos.harness import Harness, Run

DAY = 24 * 3600
BRIDGE_SETTINGS = types.SimpleNamespace(extractor_env_prefix="TAP_FRESHBOOKS")


@dataclasses.dataclass
class TrialResult:
    kind: str
    number: int
    seed: int
    changes: list[Change] = dataclasses.field(default_factory=list)
    faults: int = 0
    kill_points: list[str] = dataclasses.field(default_factory=list)
    #: (what was killed, request label) of every kill, e.g. ("tap", "invoices zK3pQ7 list p2")
    points: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    verdict: checks.Verdict | None = None
    steady: bool = False
    resent: dict[str, int] = dataclasses.field(default_factory=dict)
    runs: list[Run] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    errors: list[str] = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    @property
    def resent_total(self) -> int:
        return sum(self.resent.values())

    @property
    def ok(self) -> bool:
        return not self.errors and self.verdict is not None and self.verdict.clean and self.resent_total == 0

    def describe(self, reproduce: str = "") -> str:
        """Everything needed to reproduce and understand a failed trial."""
        lines = [
            f"chaos trial FAILED: kind={self.kind} trial={self.number} seed={self.seed}"
            + (f" (reproduce: {reproduce})" if reproduce else "")
        ]
        lines += [f"  kill point: {p}" for p in self.kill_points]
        lines += [f"  error: {e}" for e in self.errors]
        if self.verdict is not None:
            lines += [f"  mismatch: {p}" for p in self.verdict.problems[:25]]
        if self.resent_total:
            lines.append(f"  unchanged rows re-sent in the steady-state run: {self.resent}")
        lines += [f"  note: {n}" for n in self.notes]
        lines += [f"  change: {c}" for c in self.changes[:30]]
        for run in self.runs:
            lines.append(f"  run {run.label}: exit {run.returncode} in {run.seconds:.1f} s, log {run.log}")
            if not run.ok and run.label.startswith(("normal", "record_ids", "storm", "token", "race")):
                lines += ["    | " + line for line in run.tail().splitlines()]
        return "\n".join(lines)


# -- building blocks ---------------------------------------------------------------------------------
def clean_run(h: Harness, res: TrialResult, label: str = "normal") -> Run:
    """The one normal run after the fault; it must succeed. Also learns the run's request count."""
    recorder = Recorder(h.emu)
    run = h.meltano(label, hook=recorder)
    res.runs.append(run)
    if not run.ok:
        res.errors.append(f"the normal run after the fault failed (exit {run.returncode})")
    else:
        h.last_requests = list(recorder.labels)
    return run


def steady_run(h: Harness, res: TrialResult) -> None:
    """A run right after a complete run, with no change in between: it must re-send nothing."""
    before = h.marks()
    run = clean_run(h, res, "normal (steady state)")
    if run.ok:
        res.steady = True
        res.resent = checks.resent(before, h.marks())


def finish(h: Harness, res: TrialResult, started: float) -> TrialResult:
    res.verdict = h.verify()
    res.seconds = time.monotonic() - started
    return res


def pick_request(h: Harness, rng: random.Random, role: str = "", lo: int = 1) -> int:
    """A request number of a run (1-based, at least ``lo``), preferring one whose request (stream,
    account, pass, page in the last complete run) was not a kill point for ``role`` yet."""
    labels = h.last_requests or ["?"] * (lo + 1)
    numbers = list(range(lo, len(labels) + 1)) or [lo]
    fresh = [n for n in numbers if (role, labels[n - 1]) not in h.used_points]
    n = rng.choice(fresh or numbers)
    if n <= len(labels):
        h.used_points.add((role, labels[n - 1]))
    return n


def _kill_action(h: Harness, role: str) -> t.Callable[[str], tuple[str, TransportFault | None]]:
    def action(_label: str) -> tuple[str, TransportFault | None]:
        meltano = h.meltano_proc
        if meltano is None:
            return "no meltano process", None
        if role == "meltano":
            h.orphans = processes.descendants(meltano.pid)
            try:
                victim = processes.psutil.Process(meltano.pid)
            except processes.psutil.Error:
                return "meltano already gone", None
            processes.sigkill(victim)
            return f"SIGKILL meltano pid {meltano.pid}", None
        if role == "target":
            time.sleep(2)  # the loader takes in what the tap sent, flushes full batches, emits states
        victim = processes.find_role(meltano.pid, role)
        if victim is None:
            return f"no {role} process found", None
        processes.sigkill(victim)
        # the killed tap's request is never answered; a killed loader's tap gets its answer
        return f"SIGKILL {role} pid {victim.pid}", TransportFault("reset") if role == "tap" else None

    return action


def pick_label(
    h: Harness, rng: random.Random, role: str, prefer: t.Callable[[str], bool] | None = None
) -> str:
    """A request of the last complete run (stream, account, pass, page) not yet a kill point for
    ``role``; among those that ``prefer`` picks, when there are any."""
    labels = sorted(set(h.last_requests))
    fresh = [label for label in labels if (role, label) not in h.used_points]
    if prefer is not None and (preferred := [label for label in fresh if prefer(label)]):
        fresh = preferred
    label = rng.choice(fresh or labels)
    h.used_points.add((role, label))
    return label


def killed_run(
    h: Harness,
    res: TrialResult,
    role: str,
    at: int | None = None,
    extra_env: dict | None = None,
    where: str | None = None,
) -> Run:
    """A meltano run whose ``role`` is SIGKILLed at request number ``at`` or at the request ``where``."""
    trigger = Trigger(h.emu, at, _kill_action(h, role), where=where)
    h.orphans = []
    point = f"request {at}" if where is None else f"'{where}'"
    run = h.meltano(
        f"kill-{role}-at-{(where or str(at)).replace(' ', '-')}", hook=trigger, extra_env=extra_env
    )
    left = processes.reap(h.orphans)
    res.runs.append(run)
    if trigger.fired is None:
        res.notes.append(
            f"kill of the {role} at {point} never happened: the run made {trigger.count} requests"
        )
        return run
    res.faults += 1
    res.kill_points.append(
        f"{role} @ request {trigger.fired.at}: {trigger.fired.label} ({trigger.fired.note})"
    )
    res.points.append((role, trigger.fired.label))
    if left:
        res.notes.append(f"killed leftover processes of the dead run: {left}")
    if run.ok and role != "meltano":
        res.errors.append(f"meltano exited 0 although the {role} was killed at request {at}")
    return run


# -- trial kinds ---------------------------------------------------------------------------------------
def kill_tap(h: Harness, rng: random.Random, res: TrialResult, kills: int = 5) -> None:
    """SIGKILL the tap at ``kills`` request numbers in a row (each run resumes from the last saved
    state), changing FreshBooks before each, then one normal run."""
    for i in range(kills):
        res.changes += h.changes.apply(rng, rng.randint(1, 4), f"t{res.number}k{i}")
        second_page = (lambda label: label.endswith(" p2")) if i == 0 else None  # a later page every trial
        killed_run(h, res, "tap", where=pick_label(h, rng, "tap", prefer=second_page))
    clean_run(h, res)


def kill_target(h: Harness, rng: random.Random, res: TrialResult) -> None:
    """SIGKILL target-duckdb mid-run, with 4-row batches (it has flushed and emitted states)."""
    res.changes += h.changes.apply(rng, rng.randint(4, 10), f"t{res.number}")
    killed_run(h, res, "target", pick_request(h, rng, "target", lo=8), {"TARGET_DUCKDB_BATCH_SIZE_ROWS": "4"})
    clean_run(h, res)


def kill_target_full_refresh(h: Harness, rng: random.Random, res: TrialResult) -> None:
    """``meltano run --full-refresh`` (the tap starts without state) with the loader killed mid-run,
    after every bill payment (the first stream) changed; then one normal run. The loader's batch
    holds one row more than there are bill payments, so none of them is flushed by batch size.

    This trial found a bug, now fixed: without an input state the tap's first STATE came after the
    first stream's records; target-duckdb started its "flushed" state from that first STATE and
    emitted it with its next per-stream flush, while the first stream's last records were still in
    its buffer, so a loader crash lost them for good. The tap now opens such a run with an empty STATE.
    """
    for account in h.emu.accounts:
        for pk in h.emu.store.ids("bill_payments", account["account_id"]):
            res.changes.append(
                h.changes.touch(rng, "bill_payments", account["account_id"], str(pk), f"t{res.number}")
            )
    res.changes += h.changes.apply(rng, rng.randint(1, 4), f"t{res.number}")
    payments = sum(len(h.emu.store.ids("bill_payments", a["account_id"])) for a in h.emu.accounts)
    later = sorted(
        {
            label
            for label in h.last_requests
            if label.split()[0] in ("clients", "credit_notes", "expense_categories", "expenses")
        }
    )
    killed_run(
        h,
        res,
        "target",
        where=rng.choice(later),
        extra_env={"TARGET_DUCKDB_BATCH_SIZE_ROWS": str(payments + 1), "MELTANO_RUN_FULL_REFRESH": "true"},
    )
    clean_run(h, res)


def kill_meltano(h: Harness, rng: random.Random, res: TrialResult) -> None:
    """SIGKILL ``meltano`` itself; the tap and loader are left to die on their broken pipes.

    If Meltano then refuses the state ID ("already running": its dead job looks alive until it is 5
    minutes stale), the normal run is ``meltano run --force``, as its message says, and so are the
    harness's runs in the next 5 minutes.
    """
    res.changes += h.changes.apply(rng, rng.randint(2, 8), f"t{res.number}")
    killed_run(h, res, "meltano", pick_request(h, rng, "meltano", lo=3))
    if time.monotonic() < h.stale_job_until:
        clean_run(h, res, "normal (--force: an earlier dead job)")
        return
    run = h.meltano("normal")
    res.runs.append(run)
    if run.ok:
        res.notes.append("the next meltano run was not refused (the dead job was failed at once)")
        return
    if "already running" not in run.tail(5):
        res.errors.append(f"the normal run after the killed meltano failed (exit {run.returncode})")
        return
    res.notes.append(
        "meltano refused the next run ('already running', a dead job until 5 minutes "
        "stale); the normal run is meltano run --force"
    )
    h.stale_job_until = time.monotonic() + 5 * 60 + 10
    clean_run(h, res, "normal (--force)")


#: storm name -> fault settings ((lo, hi): a random "every n-th API request" in that range)
STORMS: dict[str, dict[str, t.Any]] = {
    "429 + 5xx + resets + token 503": {
        "rate_limit_every": (7, 11),
        "server_error_every": (8, 13),
        "reset_every": (9, 15),
        "retry_after": "0",
        "token_error_every": 2,
    },
    "timeouts + truncated + garbage + 429": {
        "timeout_every": (30, 40),
        "truncate_every": (8, 13),
        "garbage_every": (9, 15),
        "rate_limit_every": (13, 19),
    },
}


def storm(h: Harness, rng: random.Random, res: TrialResult) -> None:
    """A storm of 429, 5xx, resets, timeouts, truncated and garbage bodies: the run must still
    complete, and the next run (no change in between) must re-send nothing."""
    res.changes += h.changes.apply(rng, rng.randint(3, 10), f"t{res.number}")
    name = list(STORMS)[res.number % len(STORMS)]
    settings = {k: rng.randint(*v) if isinstance(v, tuple) else v for k, v in STORMS[name].items()}
    if "timeout_every" in settings:
        settings["timeout_seconds"] = h.request_timeout + 1
    h.emu.faults.configure(reset=True)
    h.emu.faults.configure(**settings)
    res.notes.append(f"storm {name}: {settings}")
    try:
        run = h.meltano(f"storm-{name.replace(' ', '')}")
    finally:
        injected = h.emu.faults.state()["injected_by_kind"]
        h.emu.faults.configure(reset=True)
    res.runs.append(run)
    res.faults += sum(injected.values())
    res.notes.append(f"injected {injected}")
    if not run.ok:
        res.errors.append(f"the run under the storm failed (exit {run.returncode}); it must retry through it")
        clean_run(h, res)
        return
    steady_run(h, res)


def _expire_tokens(h: Harness) -> t.Callable[[str], tuple[str, None]]:
    def expire(label: str) -> tuple[str, None]:  # noqa: ARG001
        h.emu.expire_access_tokens()
        return "every access token expired", None

    return expire


def token_expiry(h: Harness, rng: random.Random, res: TrialResult) -> None:
    """Access tokens expire mid-run, three ways at once: every token expires at one request, new
    tokens live 5 seconds, and the token endpoint answers 503 to every other refresh. The run must
    refresh and complete."""
    res.changes += h.changes.apply(rng, rng.randint(3, 8), f"t{res.number}")
    refreshes = h.emu.oauth.refresh_count
    at = pick_request(h, rng, "expire", lo=2)
    trigger = Trigger(h.emu, at, _expire_tokens(h))
    ttl = h.emu.access_token_ttl
    h.emu.access_token_ttl = 5
    h.emu.faults.configure(reset=True)
    h.emu.faults.configure(token_error_every=2)
    h.emu.faults.check_token()  # counts as token call 1: the run's first refresh (call 2) gets the 503
    try:
        run = h.meltano(f"token-expired-at-{at}", hook=trigger)
    finally:
        h.emu.access_token_ttl = ttl
        res.faults += h.emu.faults.state()["injected_by_kind"].get("token_503", 0)
        h.emu.faults.configure(reset=True)
    if trigger.fired:
        res.faults += 1
        res.kill_points.append(f"tokens expired @ request {at}: {trigger.fired.label}")
    res.runs.append(run)
    res.notes.append(f"token refreshes: {h.emu.oauth.refresh_count - refreshes}")
    if not run.ok:
        res.errors.append(f"the run whose token expired failed (exit {run.returncode})")
        clean_run(h, res)
        return
    steady_run(h, res)


def token_race(h: Harness, rng: random.Random, res: TrialResult) -> None:
    """Two runs at once on one token store (a meltano poll and a direct tap), with 5-second access
    tokens and every token expired mid-run: both must complete, the store must stay usable."""
    res.changes += h.changes.apply(rng, rng.randint(2, 6), f"t{res.number}")
    refreshes = h.emu.oauth.refresh_count
    config = h.tap_config(f"race{res.number}")
    out = h.workdir / f"race{res.number}.singer"
    ttl = h.emu.access_token_ttl
    h.emu.access_token_ttl = 5
    h.emu.expire_access_tokens()
    at = pick_request(h, rng, "expire", lo=2)
    started = time.monotonic()
    racer, racer_log = h.start_tap(f"race-direct-tap{res.number}", config, out)
    try:
        trigger = Trigger(h.emu, at, _expire_tokens(h))
        run = h.meltano(f"race-meltano{res.number}", hook=trigger)
        other = h.finish(f"race-direct-tap{res.number}", racer, racer_log, started)
    finally:
        h.emu.access_token_ttl = ttl
    res.runs += [run, other]
    res.faults += h.emu.oauth.refresh_count - refreshes + (1 if trigger.fired else 0)
    res.notes.append(f"token refreshes during the race: {h.emu.oauth.refresh_count - refreshes}")
    for r in (run, other):
        if not r.ok:
            res.errors.append(f"{r.label} failed (exit {r.returncode}) racing for the token store")
    if not run.ok:
        clean_run(h, res)
        return
    steady_run(h, res)


def _webhook_env(ids: dict[str, list[str]], received: dict[str, dict[str, str]]) -> dict[str, str]:
    """The variables the webhook bridge gives a record_ids run (webhook_bridge.commands.build_env)."""
    env = build_env({}, BRIDGE_SETTINGS, record_ids=ids, event_received_at=received)
    return {k: v for k, v in env.items() if k.startswith("TAP_FRESHBOOKS")}


def _webhooks(
    h: Harness, rng: random.Random, changes: t.Sequence[Change], extra: int = 0, duplicate: bool = True
) -> tuple[dict[str, list[str]], dict[str, dict[str, str]]]:
    """record_ids for these changes, duplicated and out of order, plus ``extra`` unchanged records."""
    ids: dict[str, list[str]] = {}
    for change in changes:
        ids.setdefault(change.stream, []).append(change.id)
    for _ in range(extra):
        stream = rng.choice(
            sorted(set(EVENT_STREAMS.values()) & {"clients", "invoices", "expenses", "items", "payments"})
        )
        acct = rng.choice([a["account_id"] for a in h.emu.accounts])
        pool = h.emu.store.ids(stream, acct)
        if pool:
            ids.setdefault(stream, []).append(str(rng.choice(pool)))
    received: dict[str, dict[str, str]] = {}
    base = h.emu.now()
    for stream, values in ids.items():
        if duplicate:
            values += rng.sample(values, k=max(1, len(values) // 2))
        rng.shuffle(values)
        # receive times in no particular order (not the order of the changes, nor of the ids)
        received[stream] = {
            v: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(base.timestamp() - rng.randint(0, 600)))
            for v in values
        }
    return ids, received


def webhooks_during_poll(h: Harness, rng: random.Random, res: TrialResult) -> None:
    """While a poll runs, FreshBooks changes and a record_ids run (duplicate and out-of-order ids,
    changed and unchanged records) fetches at the same time; its load waits for the poll's (one
    DuckDB writer, as the bridge's run lock allows one run at a time)."""
    before = h.changes.apply(rng, rng.randint(2, 5), f"t{res.number}a")
    res.changes += before
    at = pick_request(h, rng, "webhook", lo=2)
    out = h.workdir / f"webhook{res.number}.singer"
    racer: dict[str, t.Any] = {}

    def during(_label: str) -> tuple[str, None]:
        during_changes = h.changes.apply(rng, rng.randint(2, 5), f"t{res.number}b")
        res.changes.extend(during_changes)
        ids, received = _webhooks(h, rng, before + during_changes, extra=2)
        racer["ids"], racer["received"] = ids, received
        config = h.tap_config(f"webhook{res.number}", record_ids=ids, event_received_at=received)
        racer["proc"], racer["log"] = h.start_tap(f"webhook-direct{res.number}", config, out)
        racer["started"] = time.monotonic()
        return f"{len(during_changes)} changes + a record_ids run started", None

    trigger = Trigger(h.emu, at, during)
    poll = h.meltano(f"poll-with-webhooks-at-{at}", hook=trigger)
    res.runs.append(poll)
    if not poll.ok:
        res.errors.append(f"the poll overlapped by webhooks failed (exit {poll.returncode})")
    if "proc" not in racer:
        res.notes.append(f"the poll made only {trigger.count} requests; no webhook run overlapped it")
        clean_run(h, res)
        return
    res.kill_points.append(f"changes + record_ids run @ request {at}: {trigger.fired.label}")
    direct = h.finish(f"webhook-direct{res.number}", racer["proc"], racer["log"], racer["started"])
    res.runs.append(direct)
    res.faults += sum(len(v) for v in racer["ids"].values())
    if not direct.ok:
        res.errors.append(f"the overlapping record_ids run failed (exit {direct.returncode})")
    else:
        load = h.load(f"webhook-load{res.number}", out)
        res.runs.append(load)
        if not load.ok:
            res.errors.append(f"loading the record_ids run's output failed (exit {load.returncode})")
    clean_run(h, res)


def webhooks_dropped(h: Harness, rng: random.Random, res: TrialResult) -> None:
    """Changes whose webhooks are dropped, then (days later) changes whose webhooks run as
    record_ids runs through Meltano (as the bridge runs them): the next poll must find the dropped
    ones (a record_ids run never moves a bookmark) and must not re-send what the webhooks delivered."""
    dropped = h.changes.apply(rng, rng.randint(1, 4), f"t{res.number}dropped")
    res.changes += dropped
    delivered: list[Change] = []
    for round_ in range(1 + res.number % 2):
        h.emu.advance(rng.randint(2, 3) * DAY)  # later than any overlap window after the dropped ones
        batch = h.changes.apply(rng, rng.randint(2, 4), f"t{res.number}hook{round_}")
        res.changes += batch
        delivered += batch
        ids, received = _webhooks(h, rng, batch, extra=rng.randint(0, 2))
        run = h.meltano(f"record_ids{res.number}.{round_}", extra_env=_webhook_env(ids, received))
        res.runs.append(run)
        res.faults += sum(len(v) for v in ids.values())
        if not run.ok:
            res.errors.append(f"record_ids run {round_} failed (exit {run.returncode})")
    res.notes.append(f"dropped webhooks: {[str(c) for c in dropped]}")
    res.faults += len(dropped)
    before = h.marks()
    poll = clean_run(h, res, "normal (poll after dropped webhooks)")
    if poll.ok:
        # what the webhooks delivered (and nothing changed since) must not come again with the poll
        last_change = {}
        for c in res.changes:
            last_change[(c.stream, c.account_id, c.id)] = c
        again = []
        after = h.marks()
        touched_by_drop = {(c.stream, c.account_id, c.id) for c in dropped}
        for c in delivered:
            key = (c.stream, c.account_id, c.id)
            if key in touched_by_drop or last_change[key] is not c:
                continue
            row = (c.stream, (c.account_id, c.id))
            if row in before and row in after and before[row] != after[row]:
                again.append(str(c))
        if again:
            res.resent["delivered by webhook, re-sent by the poll"] = len(again)
            res.notes.append(f"re-sent by the poll although a webhook run delivered them: {again}")
        steady_run(h, res)


KINDS: dict[str, t.Callable[[Harness, random.Random, TrialResult], None]] = {
    "kill_tap": kill_tap,
    "kill_target": kill_target,
    "kill_target_full_refresh": kill_target_full_refresh,
    "kill_meltano": kill_meltano,
    "storm": storm,
    "token_expiry": token_expiry,
    "token_race": token_race,
    "webhooks_during_poll": webhooks_during_poll,
    "webhooks_dropped": webhooks_dropped,
}
#: trial kinds that reproduce a bug not fixed yet (none now; kill_target_full_refresh was one)
KNOWN_BUGS: dict[str, str] = {}


def run_trial(h: Harness, kind: str, number: int, seed: int) -> TrialResult:
    rng = random.Random(f"{seed}:{kind}:{number}")
    res = TrialResult(kind, number, seed)
    started = time.monotonic()
    try:
        KINDS[kind](h, rng, res)
    except Exception as exc:  # noqa: BLE001  (a harness failure is reported with the trial)
        res.errors.append(f"{type(exc).__name__}: {exc}")
    try:
        return finish(h, res, started)
    except Exception as exc:  # noqa: BLE001
        res.errors.append(f"verify failed: {type(exc).__name__}: {exc}")
        res.seconds = time.monotonic() - started
        return res


def start(h: Harness) -> None:
    """The harness's first, full run and its verdict (a clean start for the trials)."""
    recorder = Recorder(h.emu)
    run = h.meltano("first", hook=recorder)
    if not run.ok:
        raise RuntimeError(f"the first run failed (exit {run.returncode}):\n{run.tail(30)}")
    h.last_requests = list(recorder.labels)
    verdict = h.verify()
    if not verdict.clean:
        raise RuntimeError(
            "the first run did not load FreshBooks exactly: " + "; ".join(verdict.problems[:10])
        )
