"""Warehouse tests (see conftest.py)."""
