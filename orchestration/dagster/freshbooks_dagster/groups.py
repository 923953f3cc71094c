"""Account groups, read from the Meltano project: one ``inherit_from: tap-freshbooks`` extractor each.

A group is an extractor named ``tap-freshbooks--<group>`` that inherits from ``tap-freshbooks`` and
sets ``account_ids``, in ``meltano.yml`` or in a file its ``include_paths`` names
(``orchestration/*.meltano.yml``). Meltano itself is the one place groups are defined, so
``meltano run tap-freshbooks--acme target-duckdb`` by hand, the bridge and Dagster all run the
same thing. Being its own plugin, each group gets:

* its own state ID: ``<environment>:tap-freshbooks--<group>-to-<loader>``;
* its own pipeline lock (the tap keys it by project id + environment + extractor name);
* its own run directory, so parallel runs never share a catalog file (meltano/meltano#8763).

This module needs only PyYAML: no Dagster, no Meltano.
"""

from __future__ import annotations

import glob
import re
import typing as t
from dataclasses import dataclass
from pathlib import Path

import yaml

PARENT = "tap-freshbooks"
PREFIX = f"{PARENT}--"
# Dagster partition keys and Meltano plugin names: keep both simple
GROUP_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class GroupError(ValueError):
    """A group definition the fan-out cannot run; the message says which and why."""


@dataclass(frozen=True)
class AccountGroup:
    name: str  # the Dagster partition key
    extractor: str  # the Meltano plugin: tap-freshbooks--<name>
    account_ids: tuple[str, ...]
    source: str  # the file that defines it


def project_files(root: Path) -> list[Path]:
    """``meltano.yml`` and the files its ``include_paths`` globs name (as Meltano reads them)."""
    main = root / "meltano.yml"
    if not main.is_file():
        raise GroupError(f"no meltano.yml in {root} (set FRESHBOOKS_DAGSTER_PROJECT_ROOT)")
    files = [main]
    for pattern in _load(main).get("include_paths") or []:
        files += sorted(Path(p) for p in glob.glob(str(root / pattern)) if Path(p).is_file())
    return files


def _load(path: Path) -> dict[str, t.Any]:
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise GroupError(f"{path}: not a Meltano project file (top level is not a mapping)")
    return data


def load_groups(root: Path) -> list[AccountGroup]:
    """Every account group of the project, sorted by name; raises GroupError on a bad definition."""
    groups: dict[str, AccountGroup] = {}
    owner: dict[str, str] = {}  # account id -> group
    for path in project_files(root):
        for plugin in (_load(path).get("plugins") or {}).get("extractors") or []:
            name = str(plugin.get("name", ""))
            if not name.startswith(PREFIX):
                continue
            where = f"{path.relative_to(root)}: extractor {name}"
            if plugin.get("inherit_from") != PARENT:
                raise GroupError(f"{where} must have `inherit_from: {PARENT}`")
            group = name[len(PREFIX) :]
            if not GROUP_NAME.match(group):
                raise GroupError(
                    f"{where}: the group name {group!r} must be lower-case letters, digits, "
                    "'-' or '_' (at most 63)"
                )
            accounts = (plugin.get("config") or {}).get("account_ids")
            if (
                not isinstance(accounts, list)
                or not accounts
                or not all(isinstance(a, str) and a for a in accounts)
            ):
                raise GroupError(
                    f"{where} needs `config: {{account_ids: [...]}}`, a non-empty list of "
                    "FreshBooks account ids (without it the group would extract every "
                    "account its grant reaches, the other groups' too)"
                )
            if group in groups:
                raise GroupError(f"{where} is defined twice ({groups[group].source})")
            for account in accounts:
                if account in owner:
                    raise GroupError(
                        f"{where}: account {account} is already in group {owner[account]} "
                        "(each account belongs to one group, or it would be extracted twice "
                        "with two separate states)"
                    )
                owner[account] = group
            groups[group] = AccountGroup(group, name, tuple(accounts), str(path.relative_to(root)))
    return [groups[name] for name in sorted(groups)]
