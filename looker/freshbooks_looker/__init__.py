"""FreshBooks LookML tooling: offline LookML checker, Looker datagroup refresher, dimension drift
report and the generator of the base views (see looker/README.md)."""

__version__ = "0.1.0"
