"""Orthanc for the networking tests: one per module, or one of a test's own (for a test that
stops it); skipped where the Debian package ``orthanc`` is not installed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from radpipe.pacs.testing import OrthancServer, free_port

__all__ = ["free_port"]


def _server(folder: Path) -> OrthancServer:
    if shutil.which("Orthanc") is None:
        pytest.skip("Orthanc is not installed (make installs the Debian package orthanc)")
    server = OrthancServer(folder, free_port(), free_port(), free_port())
    server.start()
    return server


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    """One Orthanc for a test module."""
    server = _server(tmp_path_factory.mktemp("orthanc"))
    yield server
    server.stop()


@pytest.fixture
def fresh_orthanc(tmp_path):
    """An Orthanc of its own for a test that stops it."""
    server = _server(tmp_path / "orthanc-own")
    yield server
    server.stop()
