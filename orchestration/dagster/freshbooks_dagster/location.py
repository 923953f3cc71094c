"""The code location Dagster loads: ``dagster dev -m freshbooks_dagster.location``."""

from .definitions import build_definitions

defs = build_definitions()
