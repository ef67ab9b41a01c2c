"""Viewer latency: slice requests (512×512×300 phantom with a mask and a heatmap overlay) over
loopback, p50 and p95 over 500 requests across planes.

    .venv/bin/python benchmarks/bench_viewer.py
"""

from __future__ import annotations

import socket
import threading
import time

import httpx
import numpy as np
import uvicorn

from radpipe.masks import masks_from_labelmap
from radpipe.phantom import make_phantom, tumour_heatmap
from radpipe.viewer.app import Session, create_app
from radpipe.viewer.state import make_scan


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
    server.should_exit = True
    print("\nslice requests, 512×512×300 with mask and heatmap overlays, loopback (ms)")
    targets = {"axial": 30, "coronal": 50, "sagittal": 50}
    for plane, values in timings.items():
        p50, p95 = np.percentile(values, [50, 95])
        print(f"  {plane:<9} p50 {p50:6.1f}  p95 {p95:6.1f}  (target p95 < {targets[plane]})")


if __name__ == "__main__":
    main()
