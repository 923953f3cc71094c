"""``freshbooks-dagster``: list the account groups, or fan the pipeline out over them now.

    freshbooks-dagster groups                    # name, extractor, accounts, state ID of each group
    freshbooks-dagster run [--group NAME] [--full-refresh] [--max-parallel N]

``run`` executes the code location's asset with Dagster's own in-process execution
(``dagster.materialize``): one run over every group (or one group), the groups in parallel. With
``DAGSTER_HOME`` set the run is recorded in that instance (the UI shows it), otherwise in an
ephemeral one. It prints one JSON summary on stdout (``loaded``, ``failed`` with each group's
one-line error, ``busy``) and exits 1 when a group failed, 2 on a bad group definition.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import typing as t

from .groups import GroupError, load_groups
from .runner import environment_name, loader_name, project_root, state_id


def _summary(instance: t.Any, run_id: str, success: bool) -> dict[str, t.Any]:
    """Per group, from the run's event log (a failed step's result omits the events it logged)."""
    # a list: a group materialized twice would show twice
    loaded: list[str] = []
    busy: dict[str, str] = {}
    failed: dict[str, str] = {}
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None:
            continue
        data = event.event_specific_data
        if event.event_type_value == "ASSET_MATERIALIZATION":
            loaded.append(data.materialization.partition)
        elif event.event_type_value == "ASSET_OBSERVATION":
            busy[data.asset_observation.partition] = data.asset_observation.metadata["reason"].value
        elif event.event_type_value == "STEP_FAILURE":
            errors = data.user_failure_data.metadata.get("errors") if data.user_failure_data else None
            failed.update(errors.value if errors is not None else {"*": data.error.message.strip()})
    return {"run_id": run_id, "success": success, "loaded": sorted(loaded), "failed": failed, "busy": busy}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="freshbooks-dagster", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("groups", help="list the account groups of the Meltano project")
    run = sub.add_parser("run", help="fan the pipeline out over the groups now (in-process Dagster run)")
    run.add_argument("--group", help="only this group (default: every group, in parallel)")
    run.add_argument("--full-refresh", action="store_true", help="meltano run --full-refresh for each group")
    run.add_argument(
        "--max-parallel", type=int, help="groups at a time (default FRESHBOOKS_DAGSTER_MAX_PARALLEL or 4)"
    )
    args = parser.parse_args(argv)

    root = project_root()
    try:
        groups = load_groups(root)
    except GroupError as exc:
        print(f"freshbooks-dagster: {exc}", file=sys.stderr)
        return 2
    if args.command == "groups":  # no Dagster import: quick
        if not groups:
            print(
                "freshbooks-dagster: no account groups yet: add tap-freshbooks--<group> extractors "
                "(see orchestration/account_groups.meltano.yml.example)",
                file=sys.stderr,
            )
        for g in groups:
            sid = state_id(environment_name(), g.extractor, loader_name())
            print(f"{g.name}\t{g.extractor}\t{','.join(g.account_ids)}\t{sid}")
        return 0
    names = [g.name for g in groups]
    if not names:
        print(
            "freshbooks-dagster: no account groups: add tap-freshbooks--<group> extractors "
            "(see orchestration/account_groups.meltano.yml.example)",
            file=sys.stderr,
        )
        return 2
    if args.group and args.group not in names:
        print(
            f"freshbooks-dagster: unknown group {args.group!r}; groups: {', '.join(names)}", file=sys.stderr
        )
        return 2
    if args.max_parallel:
        os.environ["FRESHBOOKS_DAGSTER_MAX_PARALLEL"] = str(args.max_parallel)

    # Dagster is imported only for a run: `--list` and the errors above answer without its import cost.
    from dagster import DagsterInstance, materialize  # noqa: PLC0415

    from .definitions import RANGE_END, RANGE_START, MeltanoProject, build  # noqa: PLC0415

    asset, _ = build(root)
    first, last = (args.group, args.group) if args.group else (names[0], names[-1])
    instance = DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else DagsterInstance.ephemeral()
    result = materialize(
        [asset],
        instance=instance,
        resources={"meltano": MeltanoProject.from_env(root)},
        run_config={"ops": {asset.op.name: {"config": {"full_refresh": args.full_refresh}}}},
        tags={RANGE_START: first, RANGE_END: last},
        raise_on_error=False,
    )
    summary = _summary(instance, result.run_id, result.success)
    print(json.dumps(summary, sort_keys=True))
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main())
