"""The plugin's own tests drive inner pytest sessions with pytester, which each load the
plugin with ``-p tether.testing.pytest_plugin`` (no reinstall needed for the entry point);
the tests here that use its fixtures directly get it the same way (a no-op once installed)."""

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.import_plugin("pytester")
    config.pluginmanager.import_plugin("tether.testing.pytest_plugin")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
