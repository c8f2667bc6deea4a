"""The release the publish unit tests decide on."""

from __future__ import annotations

import pytest

from matrix.plan import plan_release

COMMIT = "a597971f7156"


@pytest.fixture(scope="module")
def plan(small_config):
    """2.11.5's standard Python 3.10 image, with its commit, as the latest release."""
    return plan_release(
        small_config, "2.11.5", commit=COMMIT, pythons=["3.10"], flavors=["standard"], latest=True
    )
