import sys
from pathlib import Path

import dagster as dg
import pytest

sys.path.insert(0, str(Path(__file__).parent))

import rs_dagster.defs  # noqa: F401  (silences Dagster beta warnings)


@pytest.fixture
def instance():
    with dg.instance_for_test() as test_instance:
        yield test_instance
