"""Account groups as the fan-out reads them from a Meltano project (orchestration/dagster groups.py),
and the one line it reports for a failed group run (runner.py). No Dagster needed: both modules
use only PyYAML and the standard library."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "orchestration" / "dagster"))
from freshbooks_dagster.groups import GroupError, load_groups  # noqa: E402
from freshbooks_dagster.runner import failure_line, state_id  # noqa: E402


def project(tmp_path: Path, *extractors: dict, included: list[dict] | None = None) -> Path:
    main = {
        "project_id": "x",
        "include_paths": ["./orchestration/*.meltano.yml"],
        "plugins": {"extractors": [{"name": "tap-freshbooks", "namespace": "tap_freshbooks"}, *extractors]},
    }
    (tmp_path / "meltano.yml").write_text(yaml.safe_dump(main))
    if included is not None:
        (tmp_path / "orchestration").mkdir()
        (tmp_path / "orchestration" / "groups.meltano.yml").write_text(
            yaml.safe_dump({"plugins": {"extractors": included}})
        )
    return tmp_path


def group(name: str, *accounts: str, **extra) -> dict:
    return {
        "name": f"tap-freshbooks--{name}",
        "inherit_from": "tap-freshbooks",
        "config": {"account_ids": list(accounts)},
        **extra,
    }


def test_groups_come_from_meltano_yml_and_its_include_paths_sorted(tmp_path):
    root = project(tmp_path, group("zeta", "Z1"), included=[group("alpha", "A1", "A2")])
    groups = load_groups(root)
    assert [(g.name, g.extractor, g.account_ids, g.source) for g in groups] == [
        ("alpha", "tap-freshbooks--alpha", ("A1", "A2"), "orchestration/groups.meltano.yml"),
        ("zeta", "tap-freshbooks--zeta", ("Z1",), "meltano.yml"),
    ]
    assert (
        state_id("dev", groups[0].extractor, "target-duckdb") == "dev:tap-freshbooks--alpha-to-target-duckdb"
    )


def test_the_shipped_example_is_a_valid_groups_file(tmp_path):
    example = ROOT / "orchestration" / "account_groups.meltano.yml.example"
    root = project(tmp_path, included=yaml.safe_load(example.read_text())["plugins"]["extractors"])
    assert [g.name for g in load_groups(root)] == ["maple-leaf", "northwind"]


def test_a_project_without_groups_has_none(tmp_path):
    assert load_groups(project(tmp_path)) == []


@pytest.mark.parametrize(
    ("extractors", "message"),
    [
        ([{**group("a", "A1"), "inherit_from": "tap-other"}], "must have `inherit_from: tap-freshbooks`"),
        ([group("a")], "needs `config: {account_ids: [...]}`"),
        ([{"name": "tap-freshbooks--a", "inherit_from": "tap-freshbooks"}], "needs `config: {account_ids"),
        ([group("Bad Name", "A1")], "must be lower-case letters"),
        ([group("a", "A1"), group("b", "B1", "A1")], "account A1 is already in group a"),
        ([group("a", "A1"), group("a", "A2")], "is defined twice"),
    ],
)
def test_a_bad_group_is_refused_with_one_line_naming_it(tmp_path, extractors, message):
    with pytest.raises(GroupError, match=None) as err:
        load_groups(project(tmp_path, *extractors))
    assert message in str(err.value) and "tap-freshbooks--" in str(err.value)
    assert "\n" not in str(err.value)


def test_the_failure_line_is_the_plugins_first_error_else_meltanos():
    tap_failed = (
        "2026-12-02T02:34:01.669904Z [error    ] tap-freshbooks--a FreshBooks rejected the refresh token "
        "(the grant was revoked or the token was already used). Re-authorize with: tap-freshbooks auth login\n"
        "2026-12-02T02:34:02.399035Z [error    ] meltano      Extractor failed\n"
    )
    assert failure_line(tap_failed, "tap-freshbooks--a").startswith("FreshBooks rejected the refresh token")
    quiet = "2026-12-02T02:37:19.543900Z [error    ] meltano      Loader failed\n"
    assert failure_line(quiet, "tap-freshbooks--a") == "Loader failed"
    assert failure_line("", "tap-freshbooks--a") == "tap-freshbooks--a: meltano run failed with no output"
