"""LookML tests (see conftest.py)."""
