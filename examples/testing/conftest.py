"""Nothing to set up: an installed Tether registers its pytest plugin itself (the ``pytest11``
entry point). This only covers a checkout whose environment was installed before the entry
point existed; it changes nothing where the plugin is registered already."""

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.import_plugin("tether.testing.pytest_plugin")
