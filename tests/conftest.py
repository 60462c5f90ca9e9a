import os

if "PYTEST_XDIST_WORKER" in os.environ:  # several test workers may share one GPU: no preallocation
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)


@pytest.fixture(scope="session")
def x64():
    return True


@pytest.fixture(scope="session")
def diode_far():
    """tests/helpers.diode_far_from_equilibrium, built once per test process (two AMG tests use it)."""
    from helpers import diode_far_from_equilibrium

    return diode_far_from_equilibrium()
