"""The property tests use both real handlers on the real PostgreSQL, wired as the integration tests wire them."""

import pytest

from tests.integration.conftest import pipeline

__all__ = ["pipeline"]

pytestmark = pytest.mark.integration
