"""The viewer in a real browser: Playwright drives Debian's Chromium against a local server."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import numpy as np
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
    masks = masks_from_labelmap(phantom.labels)
    # seven labels in all (as a multi-organ segmentation): the layout must still keep one row
    for number, name in enumerate(["left kidney", "right kidney", "aorta", "pancreas"]):
        extra = np.zeros(phantom.labels.array.shape, bool)
        extra[10:30, 2:6, 10 + 25 * number : 30 + 25 * number] = True
        masks.masks[name] = extra & (phantom.labels.array == 0)
    session = Session(make_scan(phantom.ct, masks=masks))
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


def frame_box(tab, plane: str) -> dict[str, float]:
    return tab.locator(f"#pane-{plane}").bounding_box()


def hover_voxel(tab, plane: str, row: int, column: int, shape: tuple[int, int]) -> None:
    box = frame_box(tab, plane)
    tab.mouse.move(
        box["x"] + (column + 0.5) / shape[1] * box["width"],
        box["y"] + (row + 0.5) / shape[0] * box["height"],
    )


def test_seven_labels_keep_three_panes_in_one_row(page):
    assert page.locator("#label-controls input").count() == 7
    boxes = [frame_box(page, plane) for plane in ("axial", "coronal", "sagittal")]
    assert abs(boxes[0]["y"] - boxes[1]["y"]) < 1 and abs(boxes[0]["y"] - boxes[2]["y"]) < 1
    assert boxes[0]["x"] < boxes[1]["x"] < boxes[2]["x"]
    assert boxes[2]["x"] + boxes[2]["width"] <= 1400
    assert page.locator("header").bounding_box()["height"] < 40  # one line, whatever the labels


def test_zoom_keys_and_ctrl_wheel_change_the_pane_scale_and_r_resets(page):
    before = frame_box(page, "axial")
    page.mouse.move(before["x"] + 10, before["y"] + 10)
    page.keyboard.press("+")
    assert page.get_attribute(".pane[data-plane=axial] .frame", "data-scale") == "1.250"
    zoomed = frame_box(page, "axial")
    assert zoomed["width"] == pytest.approx(before["width"] * 1.25, rel=1e-3)
    page.keyboard.down("Control")
    page.mouse.wheel(0, -100)
    page.keyboard.up("Control")
    page.wait_for_function(
        "document.querySelector('.pane[data-plane=axial] .frame').dataset.scale === '1.563'"
    )
    page.keyboard.press("-")
    assert page.get_attribute(".pane[data-plane=axial] .frame", "data-scale") == "1.250"
    # a left drag pans the zoomed picture by the mouse's movement
    start = frame_box(page, "axial")
    page.mouse.move(start["x"] + 100, start["y"] + 100)
    page.mouse.down()
    page.mouse.move(start["x"] + 140, start["y"] + 120, steps=4)
    page.mouse.up()
    panned = frame_box(page, "axial")
    assert panned["x"] - start["x"] == pytest.approx(40, abs=1)
    assert panned["y"] - start["y"] == pytest.approx(20, abs=1)
    page.keyboard.press("r")
    assert page.get_attribute(".pane[data-plane=axial] .frame", "data-scale") == "1.000"
    assert frame_box(page, "axial")["width"] == pytest.approx(before["width"], rel=1e-3)


def test_ruler_reports_the_distance_in_mm_zoomed_or_not(page, served):
    _, phantom = served
    spacing = phantom.ct.spacing  # (slice, row, column) mm
    page.keyboard.press("m")
    box = frame_box(page, "axial")
    # 64 columns and 32 rows of the 128 × 128 slice: hypot(64 × 1.5, 32 × 1.5) mm
    page.mouse.move(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.5)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.75, box["y"] + box["height"] * 0.75, steps=5)
    page.mouse.up()
    expected = float(np.hypot(64 * spacing[2], 32 * spacing[1]))
    assert float(page.get_attribute("body", "data-ruler-mm")) == pytest.approx(expected, abs=1.0)
    assert "mm (axial)" in page.text_content("#measure")
    # zoomed twice as large, the same screen distance is half as many mm
    page.keyboard.press("+")
    page.keyboard.press("+")
    page.keyboard.press("+")
    scale = float(page.get_attribute(".pane[data-plane=axial] .frame", "data-scale"))
    box = frame_box(page, "axial")
    frame = page.locator(".pane[data-plane=axial] .frame").bounding_box()
    x0, y0 = frame["x"] + 20, frame["y"] + 20
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x0 + 100, y0, steps=5)
    page.mouse.up()
    columns = 100 / box["width"] * 128
    assert float(page.get_attribute("body", "data-ruler-mm")) == pytest.approx(
        columns * spacing[2], abs=1.0
    )
    assert columns * spacing[2] == pytest.approx(100 / scale / (box["width"] / scale) * 128 * 1.5)
    page.keyboard.press("m")
    page.keyboard.press("r")


def test_label_name_and_value_under_the_cursor(page, served):
    _, phantom = served
    labels = phantom.labels.array
    k = axial_index(page)
    liver = np.argwhere(labels[k] == 1)
    row, column = liver[len(liver) // 2]
    hover_voxel(page, "axial", int(row), int(column), labels.shape[1:])
    page.wait_for_function(
        f"document.getElementById('cursor').dataset.voxel === '{k},{row},{column}'"
    )
    assert page.get_attribute("#cursor", "data-label") == "liver"
    assert float(page.get_attribute("#cursor", "data-value")) == float(
        phantom.ct.array[k, row, column]
    )
    assert "label liver" in page.text_content("#cursor")
    page.click("tr.lesion >> nth=0")
    lesion_index = [
        int(v) for v in page.get_attribute("tr.lesion >> nth=0", "data-index").split(",")
    ]
    page.wait_for_function(
        f"document.getElementById('pane-axial').dataset.index === '{lesion_index[0]}'"
    )
    k, row, column = lesion_index
    hover_voxel(page, "axial", row, column, labels.shape[1:])
    page.wait_for_function(
        f"document.getElementById('cursor').dataset.voxel === '{k},{row},{column}'"
    )
    assert page.get_attribute("#cursor", "data-label") == "tumor"
    assert labels[k, row, column] == 2


def test_home_end_page_keys_move_the_active_pane(page):
    box = frame_box(page, "axial")
    page.mouse.move(box["x"] + 5, box["y"] + 5)
    page.keyboard.press("Home")
    page.wait_for_function("document.getElementById('pane-axial').dataset.index === '0'")
    page.keyboard.press("PageDown")
    page.wait_for_function("document.getElementById('pane-axial').dataset.index === '10'")
    page.keyboard.press("ArrowUp")
    page.wait_for_function("document.getElementById('pane-axial').dataset.index === '11'")
    page.keyboard.press("PageUp")
    page.wait_for_function("document.getElementById('pane-axial').dataset.index === '1'")
    page.keyboard.press("End")
    page.wait_for_function("document.getElementById('pane-axial').dataset.index === '39'")
    coronal = frame_box(page, "coronal")
    page.mouse.move(coronal["x"] + 5, coronal["y"] + 5)
    page.keyboard.press("Home")
    page.wait_for_function("document.getElementById('pane-coronal').dataset.index === '0'")
    assert axial_index(page) == 39


def test_a_window_drag_shows_custom_in_the_preset_menu(page):
    page.select_option("#preset", "lung")
    box = frame_box(page, "axial")
    page.mouse.move(box["x"] + 50, box["y"] + 50)
    page.mouse.down(button="right")
    page.mouse.move(box["x"] + 90, box["y"] + 70, steps=4)
    page.mouse.up(button="right")
    assert page.eval_on_selector("#preset", "e => e.value") == "custom"
    # lung: 1500 wide + 40 px × 4, centre −600 − 20 px × 2
    page.wait_for_function(
        "document.getElementById('window-text').textContent === 'C -640 / W 1660'"
    )
    page.keyboard.press("r")
    assert page.eval_on_selector("#preset", "e => e.value") == ""


def surface_pixels(tab) -> list[list[int]]:
    return tab.evaluate(
        """() => { const image = document.getElementById('pane-3d');
        const canvas = document.createElement('canvas'); canvas.width = image.naturalWidth; canvas.height = image.naturalHeight;
        const context = canvas.getContext('2d'); context.drawImage(image, 0, 0);
        const data = context.getImageData(0, 0, canvas.width, canvas.height).data, out = [];
        for (let n = 0; n < data.length; n += 4 * 97) out.push([data[n], data[n + 1], data[n + 2]]);
        return out; }"""
    )


def test_3d_pane_renders_the_masks_in_a_two_by_two_layout_and_rotates(page):
    page.click("#toggle-3d")
    page.wait_for_function("document.getElementById('pane-3d').dataset.azimuth === '0.0'")
    page.wait_for_function("document.getElementById('pane-3d').complete")
    axial, surface = frame_box(page, "axial"), frame_box(page, "3d")
    assert surface["y"] > axial["y"] + axial["height"] - 1  # second row of the 2 × 2
    front = surface_pixels(page)
    drawn = [p for p in front if p != [17, 17, 17]]
    assert len(drawn) > len(front) * 0.1  # the liver and spleen fill a good part of the view
    page.mouse.move(surface["x"] + 50, surface["y"] + 50)
    page.mouse.down()
    page.mouse.move(surface["x"] + 230, surface["y"] + 50, steps=6)
    page.mouse.up()
    page.wait_for_function("document.getElementById('pane-3d').dataset.azimuth === '90.0'")
    page.wait_for_timeout(100)
    assert surface_pixels(page) != front
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "viewer-3d.png"))
    page.click("#toggle-3d")
    assert page.locator("#pane3d-box").is_hidden()
