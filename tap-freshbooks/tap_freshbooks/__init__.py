"""tap-freshbooks: a Singer tap for FreshBooks (distribution ``freshbooks-warehouse-tap``)."""

#: the one version source: pyproject.toml reads it ([tool.hatch.version]), so does `--about`
__version__ = "0.1.0"
