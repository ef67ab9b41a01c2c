"""Shared fixtures: where the real test data lives, and small phantom studies written per test."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from radpipe.phantom import PhantomStudy, write_phantom_study

ROOT = Path(__file__).resolve().parents[1]


def _data_root() -> Path:
    return Path(os.environ.get("RADPIPE_TEST_DATA", ROOT.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session", autouse=True)
def _pseudonym_key() -> None:
    os.environ.setdefault("RADPIPE_PSEUDONYM_KEY", "radpipe-tests")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real public test data (``$RADPIPE_TEST_DATA`` or ``../shared/data``).

    Missing data skips the test, except under CI where it fails: no real-data test may be
    skipped silently there.
    """
    root = _data_root()
    if not root.is_dir():
        message = f"real test data not found at {root}; set RADPIPE_TEST_DATA"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return root


@pytest.fixture(scope="session")
def dcm2niix() -> str:
    """Path of the dcm2niix reference converter (required under CI)."""
    found = shutil.which("dcm2niix")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("dcm2niix is missing; `make test` installs it through apt")
        pytest.skip("dcm2niix is not installed")
    return found


@pytest.fixture(scope="session")
def phantom_study(tmp_path_factory: pytest.TempPathFactory) -> PhantomStudy:
    """A 24-slice phantom with 3 tumours, written once per session (read-only for tests)."""
    folder = tmp_path_factory.mktemp("phantom") / "study"
    return write_phantom_study(
        folder, shape=(24, 96, 112), spacing=(2.5, 2.2, 2.0), tumours=3, seed=7
    )


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def chromium():
    """Debian's Chromium driven by Playwright (headless); required under CI, else skipped."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is missing; `make test` installs it through apt")
        pytest.skip("chromium is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--no-first-run"],
        )  # fmt: skip
        yield browser
        browser.close()
