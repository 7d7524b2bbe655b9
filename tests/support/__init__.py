"""Helpers of the test suite; tests/conftest.py holds its fixtures and hooks."""
