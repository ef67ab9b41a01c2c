"""Viewer latency: slice requests (512×512×300 phantom with a mask and a heatmap overlay) over
loopback, p50 and p95 over 500 requests across planes; the 3-D pane of the masks; and the time
from starting `radpipe view` on a 300-file DICOM series to the first pane drawn in Chromium.

    .venv/bin/python benchmarks/bench_viewer.py
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import uvicorn

from radpipe.masks import masks_from_labelmap
from radpipe.phantom import make_phantom, tumour_heatmap
from radpipe.viewer.app import Session, create_app
from radpipe.viewer.state import make_scan

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCH_DIR


def main() -> None:
    phantom = make_phantom(shape=(300, 512, 512), spacing=(1.0, 0.7, 0.7), tumours=4, seed=1)
    session = Session(
        make_scan(
            phantom.ct, masks=masks_from_labelmap(phantom.labels), heatmap=tumour_heatmap(phantom)
        )
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(session), host="127.0.0.1", port=port, log_level="warning")
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    rng = np.random.default_rng(0)
    counts = {"axial": 300, "coronal": 512, "sagittal": 512}
    timings: dict[str, list[float]] = {plane: [] for plane in counts}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        for number in range(500):
            plane = ("axial", "coronal", "sagittal")[number % 3]
            index = int(rng.integers(counts[plane]))
            overlays = {"labels": "1,2,3", "heatmap": "1", "threshold": 0.2}
            params = {"token": session.token, "plane": plane, "index": index, **overlays}
            start = time.perf_counter()
            answer = client.get("/api/slice.png", params=params)
            timings[plane].append((time.perf_counter() - start) * 1000)
            assert answer.status_code == 200
        surface = []
        for number in range(40):
            params = {"token": session.token, "azimuth": number * 9, "elevation": 15,
                      "labels": "1,2,3", "size": 192}  # fmt: skip
            start = time.perf_counter()
            answer = client.get("/api/surface.png", params=params)
            surface.append((time.perf_counter() - start) * 1000)
            assert answer.status_code == 200
    server.should_exit = True
    print("\nslice requests, 512×512×300 with mask and heatmap overlays, loopback (ms)")
    targets = {"axial": 30, "coronal": 50, "sagittal": 50}
    for plane, values in timings.items():
        p50, p95 = np.percentile(values, [50, 95])
        print(f"  {plane:<9} p50 {p50:6.1f}  p95 {p95:6.1f}  (target p95 < {targets[plane]})")
    p50, p95 = np.percentile(surface, [50, 95])
    print(f"  3-D pane  p50 {p50:6.1f}  p95 {p95:6.1f}  (192 × 192, three labels, 40 rotations)")
    png_encoders(session)
    first_image(phantom)


def png_encoders(session: Session) -> None:
    """Our unfiltered level-1 PNG writer beside Pillow's level-1 encoder, same pictures."""
    import io

    from PIL import Image

    from common import best_time, report
    from radpipe.render import Plane
    from radpipe.viewer.state import ViewRequest, png_bytes, render_pane
    from radpipe.windowing import Window

    assert session.scan is not None
    pictures = [
        render_pane(session.scan, ViewRequest(plane, 150, Window(40, 400), labels=(1, 2, 3)))
        for plane in Plane
    ]

    def pillow() -> None:
        for picture in pictures:
            Image.fromarray(picture).save(io.BytesIO(), format="PNG", compress_level=1)

    def ours() -> None:
        for picture in pictures:
            png_bytes(picture)

    for picture in pictures:
        decoded = np.asarray(Image.open(io.BytesIO(png_bytes(picture))))
        assert np.array_equal(decoded, picture)
    ours_s, pillow_s = best_time(ours, repeats=10), best_time(pillow, repeats=10)
    report("PNG encode of the three panes (identical pixels)", ours_s, {"Pillow": pillow_s})


def first_image(phantom) -> None:
    """Seconds from starting `radpipe view` on a DICOM series to the first pane drawn."""
    from playwright.sync_api import sync_playwright

    from radpipe.export.dicom import SeriesIdentity, write_ct_series

    series = BENCH_DIR / "viewer-ct-512x512x300"
    if not (series / "done").exists():
        shutil.rmtree(series, ignore_errors=True)
        identity = SeriesIdentity(
            patient_id="BENCH-VIEW",
            patient_name="Bench^View",
            study_uid="1.2.826.0.1.3680043.8.498.1",
            series_uid="1.2.826.0.1.3680043.8.498.2",
            frame_of_reference_uid="1.2.826.0.1.3680043.8.498.3",
            series_description="viewer benchmark CT",
        )
        write_ct_series(phantom.ct, series, identity)
        (series / "done").touch()
    radpipe = str(Path(sys.executable).with_name("radpipe"))
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    times = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        for _ in range(3):
            tab = browser.new_page(viewport={"width": 1400, "height": 900})
            start = time.perf_counter()
            process = subprocess.Popen(
                [radpipe, "view", str(series), "--no-browser"], stdout=subprocess.PIPE, text=True
            )
            try:
                assert process.stdout is not None
                line = process.stdout.readline()
                url = line[line.index("http://") :].split()[0]
                tab.goto(url)
                tab.wait_for_function(
                    "(() => { const i = document.getElementById('pane-axial'); return i &&"
                    " i.complete && i.naturalWidth > 0 && i.dataset.index !== undefined; })()",
                    timeout=60_000,
                )
                times.append(time.perf_counter() - start)
            finally:
                process.terminate()
                process.wait(timeout=20)
                tab.close()
        browser.close()
    print(
        f"\ntime to first image, `radpipe view` on a 300-file 512×512 CT series → axial pane in "
        f"Chromium: best {min(times):.2f} s, median {np.median(times):.2f} s (target < 2 s)"
    )


if __name__ == "__main__":
    main()
