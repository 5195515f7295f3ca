"""The test tiers (unit, integration, system, infra, security) and their helpers (support)."""

import pytest

# The helpers assert too: pytest rewrites them (for its messages) only if told before they are first imported,
# and this package is imported before any conftest.
pytest.register_assert_rewrite("tests.support")
