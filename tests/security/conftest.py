"""Security suites reuse the API tests' fixtures: one way to sign requests and build events."""

from __future__ import annotations

from tests.api.conftest import signing

__all__ = ["signing"]
