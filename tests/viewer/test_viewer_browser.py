"""The viewer in a real browser: Playwright drives Debian's Chromium against a local server."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from radpipe.masks import masks_from_labelmap
from radpipe.phantom import make_phantom
from radpipe.viewer.app import Session, create_app
from radpipe.viewer.state import make_scan

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="module")
def served():
    uvicorn = pytest.importorskip("uvicorn")
    phantom = make_phantom(shape=(40, 128, 128), spacing=(2.5, 1.5, 1.5), tumours=2, seed=2)
    session = Session(make_scan(phantom.ct, masks=masks_from_labelmap(phantom.labels)))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(session), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 15
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/?token={session.token}", phantom
    server.should_exit = True
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def page(served, chromium):
    url, _ = served
    tab = chromium.new_page(viewport={"width": 1400, "height": 900})
    tab.goto(url)
    tab.wait_for_selector('body[data-ready="1"]', timeout=20_000)
    wait_images(tab)
    yield tab
    ARTIFACTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / "viewer.png"))


def wait_images(tab) -> None:
    tab.wait_for_function(
        "['axial','coronal','sagittal'].every(p => { const i = document.getElementById('pane-' + p);"
        " return i.complete && i.naturalWidth > 0 && i.dataset.index !== undefined; })"
    )
    tab.wait_for_timeout(150)


def pixel(tab, plane: str, row: float, column: float) -> list[int]:
    """RGB of the pane's picture at fractional (row, column) of its slice."""
    return tab.evaluate(
        """([plane, row, column]) => { const image = document.getElementById('pane-' + plane);
        const canvas = document.createElement('canvas'); canvas.width = image.naturalWidth; canvas.height = image.naturalHeight;
        const context = canvas.getContext('2d'); context.drawImage(image, 0, 0);
        const x = Math.floor(column * image.naturalWidth), y = Math.floor(row * image.naturalHeight);
        return Array.from(context.getImageData(x, y, 1, 1).data.slice(0, 3)); }""",
        [plane, row, column],
    )


def axial_index(tab) -> int:
    return int(tab.get_attribute("#pane-axial", "data-index"))


def test_slider_moves_the_axial_image(page):
    before = page.evaluate("document.getElementById('pane-axial').src")
    page.fill("#slider-axial", "5")
    page.dispatch_event("#slider-axial", "input")
    page.wait_for_function("document.getElementById('pane-axial').dataset.index === '5'")
    assert page.evaluate("document.getElementById('pane-axial').src") != before
    assert "axial 5 /" in page.text_content("#index-axial")


def test_click_in_coronal_moves_the_axial_slice(page):
    box = page.locator("#pane-coronal").bounding_box()
    # coronal rows run head (top) to feet: a click 25 % down picks slice k = 40 - 1 - 10 = 29
    page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.25 + 1)
    page.wait_for_function("document.getElementById('pane-axial').dataset.index === '29'")
    assert axial_index(page) == 29


def test_lung_preset_changes_pixel_values(page):
    page.select_option("#preset", "soft-tissue")
    wait_images(page)
    soft = pixel(page, "axial", 0.5, 0.5)
    page.select_option("#preset", "lung")
    wait_images(page)
    lung = pixel(page, "axial", 0.5, 0.5)
    # soft tissue (~40 HU) is mid-grey in the soft-tissue window and brighter in the lung window
    assert lung[0] > soft[0] + 40


def test_tumour_overlay_and_lesion_jump(page, served):
    _, phantom = served
    page.click("tr.lesion >> nth=0")
    index = [int(v) for v in page.get_attribute("tr.lesion >> nth=0", "data-index").split(",")]
    page.wait_for_function(f"document.getElementById('pane-axial').dataset.index === '{index[0]}'")
    wait_images(page)
    assert axial_index(page) == index[0]
    row, column = (index[1] + 0.5) / 128, (index[2] + 0.5) / 128
    with_mask = pixel(page, "axial", row, column)
    page.uncheck("#label-2")
    wait_images(page)
    without = pixel(page, "axial", row, column)
    page.check("#label-2")
    wait_images(page)
    assert with_mask != without
    assert with_mask[0] > with_mask[2]  # tab10 orange over the grey tumour
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "viewer-lesion.png"))
    assert phantom.labels.array[tuple(index)] == 2  # the jump lands inside the tumour
