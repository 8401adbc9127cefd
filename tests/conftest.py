"""Session-wide isolation: no test may read or write the real user's Kiro credentials.

At start-up the kiro-lc environment variables are removed and HOME (plus the Windows and XDG
data-dir variables) points into a temporary directory, so the default credential paths
(``~/.local/share/kiro-cli``, ``~/.aws/sso/cache``) resolve to empty places. Tests that need
credentials build them in their own temp dirs or use ``kiro_lc.testing.KiroEmulator``.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from kiro_lc._env import ENVIRONMENT_VARIABLES

# The credential fixtures (``home``, ``emu`` and the Kiro store builders) live in auth_fixtures.
pytest_plugins = ["auth_fixtures"]

_fake_home = tempfile.mkdtemp(prefix="kiro-lc-test-home-")


def pytest_configure(config: pytest.Config) -> None:
    for name in ENVIRONMENT_VARIABLES:
        os.environ.pop(name, None)
    os.environ["HOME"] = _fake_home
    for name in ("APPDATA", "LOCALAPPDATA", "XDG_DATA_HOME", "XDG_CONFIG_HOME"):
        os.environ.pop(name, None)


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_fake_home, ignore_errors=True)
