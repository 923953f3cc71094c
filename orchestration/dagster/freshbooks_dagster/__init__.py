"""Fan the FreshBooks Meltano pipeline out over account groups with Dagster (see orchestration/README.md)."""
