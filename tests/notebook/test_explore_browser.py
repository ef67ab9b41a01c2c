"""The widget in JupyterLab in Chromium: open a notebook, run it, move the axial slider with the
keyboard, and check the axial picture's pixels change (a live kernel renders each slice)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from radpipe.phantom import write_phantom_study

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("jupyterlab")
pytest.importorskip("ipywidgets")

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    write_phantom_study(root / "data" / "patient01", shape=(20, 64, 72), spacing=(2.5, 1.8, 1.6),
                        tumours=2, seed=3)  # fmt: skip
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                "from radpipe.notebook import explore\nexplore('data', patient=1, mask='all')"
            )
        ],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    )
    nbformat.write(notebook, root / "explore.ipynb")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    token = "radpipe-test-token"
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(root / ".settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(root / ".workspaces"),
           "JUPYTER_RUNTIME_DIR": str(root / ".runtime")}  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}",
         "--ServerApp.ip=127.0.0.1", "--allow-root", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={root}", "--LabApp.news_url=", "--LabApp.check_for_updates_class="
         "jupyterlab.NeverCheckForUpdate"],
        cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if server.poll() is not None:
                pytest.fail(f"jupyter lab did not start: {server.stderr.read().decode()[-2000:]}")
            time.sleep(0.3)
    yield f"{url}/lab/tree/explore.ipynb?token={token}"
    server.terminate()
    server.wait(timeout=20)


def axial_pixels(tab) -> list[int]:
    return tab.evaluate(
        """() => { const image = document.querySelectorAll('.jp-OutputArea-output img')[0];
        const canvas = document.createElement('canvas'); canvas.width = image.naturalWidth; canvas.height = image.naturalHeight;
        const context = canvas.getContext('2d'); context.drawImage(image, 0, 0);
        return Array.from(context.getImageData(0, 0, canvas.width, canvas.height).data.filter((_, n) => n % 16 === 0)); }"""
    )


def test_slider_in_jupyterlab_changes_the_picture(lab, chromium):
    tab = chromium.new_page(viewport={"width": 1500, "height": 1000})
    tab.goto(lab)
    tab.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
    tab.wait_for_selector("text=Python 3 (ipykernel) | Idle", timeout=90_000)
    tab.click(".jp-Cell .jp-InputArea-editor")
    tab.keyboard.press("Shift+Enter")
    tab.wait_for_selector(".jp-InputPrompt:has-text('[1]')", timeout=90_000)
    try:
        tab.wait_for_function(
            "(() => { const i = document.querySelectorAll('.jp-OutputArea-output img');"
            " return i.length === 3 && [...i].every(x => x.complete && x.naturalWidth > 0); })()",
            timeout=40_000,
        )
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        tab.screenshot(path=str(ARTIFACTS / "notebook-widget.png"))
    before = axial_pixels(tab)
    source = tab.evaluate("document.querySelectorAll('.jp-OutputArea-output img')[0].src")
    axial = tab.locator(".jp-OutputArea-output .widget-hslider:has(.widget-label:text-is('axial'))")
    handle = axial.locator(".noUi-handle")
    handle.focus()
    for _ in range(6):
        tab.keyboard.press("ArrowRight")
    tab.wait_for_function(
        f"document.querySelectorAll('.jp-OutputArea-output img')[0].src !== {source!r}",
        timeout=30_000,
    )
    tab.wait_for_timeout(300)
    readout = axial.locator(".widget-readout").text_content()
    assert int(readout) == 10 + 6  # the middle of 20 slices, six steps up
    assert axial_pixels(tab) != before
    ARTIFACTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / "notebook-widget.png"))
    tab.close()
