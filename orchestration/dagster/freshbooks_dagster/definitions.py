"""The Dagster code location: the FreshBooks pipeline fanned out over account groups.

* ``account_groups``: static partitions, one per group (``groups.py``: the project's
  ``tap-freshbooks--<group>`` extractors), read when the code location loads.
* ``freshbooks_warehouse``: the asset. A run may target one group or a range of groups (single-run
  backfill policy); the groups of a run go in parallel, ``max_parallel`` at a time, each as its own
  ``meltano run tap-freshbooks--<group> <loader>`` (own state ID, own pipeline lock). A group that
  succeeds is materialized at once (its partition turns green); one that fails does not stop the
  others, and the run fails at the end naming each failed group with its one-line error. A group
  whose lock another run holds (the bridge, cron) is "busy": skipped, not failed, nothing lost.
* ``freshbooks_fan_out``: the job, and ``freshbooks_every_15_minutes``: its schedule, one run per
  ``groups_per_run`` groups.

Settings come from the environment (``meltano invoke`` passes the project's):
``FRESHBOOKS_DAGSTER_PROJECT_ROOT`` (default ``MELTANO_PROJECT_ROOT``, else the working directory),
``FRESHBOOKS_DAGSTER_MELTANO`` (the ``meltano`` executable), ``FRESHBOOKS_DAGSTER_ENVIRONMENT``
(default ``MELTANO_ENVIRONMENT``, else ``dev``), ``FRESHBOOKS_DAGSTER_LOADER`` (``target-duckdb``),
``FRESHBOOKS_DAGSTER_DUCKDB_DIR`` (``output/groups``: one DuckDB file per group, DuckDB being
single-writer), ``FRESHBOOKS_DAGSTER_MAX_PARALLEL`` (4), ``FRESHBOOKS_DAGSTER_GROUPS_PER_RUN`` (50),
``FRESHBOOKS_DAGSTER_RUN_TIMEOUT`` (3600 s per group run).
"""

import os
import shutil
import typing as t
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    AssetMaterialization,
    AssetObservation,
    AssetsDefinition,
    BackfillPolicy,
    Config,
    ConfigurableResource,
    Definitions,
    Failure,
    MetadataValue,
    RunRequest,
    ScheduleEvaluationContext,
    StaticPartitionsDefinition,
    asset,
    define_asset_job,
    schedule,
)

from .groups import AccountGroup, load_groups
from .runner import GroupResult, environment_name, loader_name, prepare_system_db, project_root, run_group

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


def log_dir(root: Path) -> Path:
    """Each group run's log: ``<Meltano system dir>/logs/freshbooks-dagster/<group>-<time>-<pid>.log``."""
    return Path(os.environ.get("MELTANO_SYS_DIR_ROOT") or root / ".meltano") / "logs" / "freshbooks-dagster"


def default_meltano(root: Path) -> str:
    return (
        os.environ.get("FRESHBOOKS_DAGSTER_MELTANO")
        or shutil.which("meltano")
        or str(root / ".venv" / "bin" / "meltano")
    )


class MeltanoProject(ConfigurableResource):
    """Where and how to run ``meltano run`` (defaults from the FRESHBOOKS_DAGSTER_* variables)."""

    project_root: str
    meltano: str
    environment: str = "dev"
    loader: str = "target-duckdb"
    duckdb_dir: str | None = None
    max_parallel: int = 4
    run_timeout: float = 3600

    @classmethod
    def from_env(cls, root: Path) -> "MeltanoProject":
        return cls(
            project_root=str(root),
            meltano=default_meltano(root),
            environment=environment_name(),
            loader=loader_name(),
            duckdb_dir=os.environ.get("FRESHBOOKS_DAGSTER_DUCKDB_DIR") or str(root / "output" / "groups"),
            max_parallel=int(os.environ.get("FRESHBOOKS_DAGSTER_MAX_PARALLEL") or 4),
            run_timeout=float(os.environ.get("FRESHBOOKS_DAGSTER_RUN_TIMEOUT") or 3600),
        )

    def prepare(self) -> str | None:
        return prepare_system_db(
            project_root=Path(self.project_root), meltano=self.meltano, environment=self.environment
        )

    def run(self, group: AccountGroup, full_refresh: bool) -> GroupResult:
        root = Path(self.project_root)
        return run_group(
            group,
            project_root=root,
            meltano=self.meltano,
            environment=self.environment,
            loader=self.loader,
            log_dir=log_dir(root),
            full_refresh=full_refresh,
            timeout=self.run_timeout,
            duckdb_dir=Path(self.duckdb_dir) if self.duckdb_dir else None,
        )


class FanOutConfig(Config):
    full_refresh: bool = False  # meltano run --full-refresh: every current record again, new state


def build_definitions(root: Path | None = None) -> Definitions:
    return build(root)[1]


def build(root: Path | None = None) -> tuple[AssetsDefinition, Definitions]:
    """The asset and the code location's Definitions for the project at ``root``."""
    root = root or project_root()
    groups = {g.name: g for g in load_groups(root)}
    account_groups = StaticPartitionsDefinition(sorted(groups))

    @asset(
        partitions_def=account_groups,
        backfill_policy=BackfillPolicy.single_run(),
        output_required=False,
        group_name="freshbooks",
        description="The FreshBooks data of each account group, loaded by its own Meltano pipeline.",
    )
    def freshbooks_warehouse(
        context: AssetExecutionContext, config: FanOutConfig, meltano: MeltanoProject
    ) -> Iterator[AssetMaterialization | AssetObservation]:
        # A generator that yields no Output: Dagster then materializes exactly the partitions yielded
        # here (a plain function returning None would materialize every partition of the run).
        wanted = [groups[key] for key in context.partition_keys]
        if len(wanted) > 1:
            problem = meltano.prepare()
            if problem:
                raise Failure(description=f"Meltano's system database could not be migrated: {problem}")
        results: list[GroupResult] = []
        with ThreadPoolExecutor(max_workers=max(1, min(meltano.max_parallel, len(wanted)))) as pool:
            futures = [pool.submit(meltano.run, group, config.full_refresh) for group in wanted]
            for future in as_completed(futures):
                result = future.result()
                results.append(result)
                if result.status == "ok":
                    yield AssetMaterialization(
                        asset_key=context.asset_key,
                        partition=result.group,
                        metadata={
                            "state_id": result.state_id,
                            "accounts": ", ".join(result.accounts),
                            "seconds": result.seconds,
                            "full_refresh": config.full_refresh,
                            "log": MetadataValue.path(result.log or ""),
                        },
                    )
                    context.log.info(f"{result.group}: loaded in {result.seconds} s ({result.state_id})")
                elif result.status == "busy":
                    yield AssetObservation(
                        asset_key=context.asset_key,
                        partition=result.group,
                        metadata={"status": "busy", "reason": result.error or ""},
                    )
                    context.log.warning(f"{result.group}: skipped, {result.error}")
                else:
                    context.log.error(f"{result.group}: failed: {result.error} (log {result.log})")
        failed = sorted((r for r in results if r.status == "failed"), key=lambda r: r.group)
        if failed:
            raise Failure(
                description=f"{len(failed)} of {len(results)} account groups failed: "
                + "; ".join(f"{r.group}: {r.error}" for r in failed),
                metadata={
                    "errors": MetadataValue.json({r.group: r.error for r in failed}),
                    "loaded": ", ".join(sorted(r.group for r in results if r.status == "ok")),
                },
            )

    fan_out = define_asset_job(
        "freshbooks_fan_out", selection=[freshbooks_warehouse], partitions_def=account_groups
    )

    @schedule(job=fan_out, cron_schedule="*/15 * * * *", name="freshbooks_every_15_minutes")
    def every_15_minutes(context: ScheduleEvaluationContext) -> t.Any:
        per_run = max(1, int(os.environ.get("FRESHBOOKS_DAGSTER_GROUPS_PER_RUN") or 50))
        keys = account_groups.get_partition_keys()
        stamp = (
            context.scheduled_execution_time.strftime("%Y%m%dT%H%M")
            if context.scheduled_execution_time
            else "now"
        )
        for i in range(0, len(keys), per_run):
            chunk = keys[i : i + per_run]
            yield RunRequest(
                run_key=f"{stamp}-{chunk[0]}", tags={RANGE_START: chunk[0], RANGE_END: chunk[-1]}
            )

    return freshbooks_warehouse, Definitions(
        assets=[freshbooks_warehouse],
        jobs=[fan_out],
        schedules=[every_15_minutes],
        resources={"meltano": MeltanoProject.from_env(root)},
    )
