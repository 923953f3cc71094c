"""target-duckdb-fast: a Singer target for DuckDB (distribution ``freshbooks-warehouse-target-duckdb``).

Loads the same tables as target-duckdb 0.8.0, but leaves parsing and casting each record to DuckDB.
"""

#: the one version source: pyproject.toml reads it ([tool.hatch.version]), so does `--about`
__version__ = "0.1.0"
