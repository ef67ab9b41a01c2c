"""Heatmap overlay: radpipe's window + colormap + blend (with and without PNG encoding)
against the notebook route (matplotlib imshow of image and heatmap with alpha, savefig), and
batch rendering of every slice on one core and on all cores.

    .venv/bin/python benchmarks/bench_overlay.py
"""

from __future__ import annotations

import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report
from radpipe.colormaps import blend, normalize
from radpipe.export.png import write_all_slices
from radpipe.phantom import make_phantom, tumour_heatmap
from radpipe.windowing import PRESETS, apply_window


def per_second(function, seconds: float = 1.5) -> float:
    function()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        function()
        count += 1
    return count / (time.perf_counter() - start)


def main() -> None:
    from PIL import Image

    phantom = make_phantom(shape=(40, 512, 512), spacing=(2.5, 0.7, 0.7), tumours=3, seed=1)
    heat = tumour_heatmap(phantom)
    k = int(np.argmax(heat.max(axis=(1, 2))))
    image, heatmap = phantom.ct.array[k], heat[k]
    window = PRESETS["soft-tissue"]

    def compose() -> np.ndarray:
        return blend(apply_window(image, window), normalize(heatmap), colormap="jet", opacity=0.6)

    def compose_png(level: int) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(compose()).save(buffer, format="PNG", compress_level=level)
        return buffer.getvalue()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def matplotlib_route() -> bytes:
        figure = plt.figure(figsize=(5.12, 5.12), dpi=100)
        axes = figure.add_axes((0, 0, 1, 1))
        axes.axis("off")
        axes.imshow(image, cmap="gray", vmin=window.low, vmax=window.high)
        axes.imshow(heatmap, cmap="jet", alpha=0.6)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        plt.close(figure)
        return buffer.getvalue()

    composes = per_second(compose)
    png_fast = per_second(lambda: compose_png(1))
    png_default = per_second(lambda: compose_png(6))
    mpl = per_second(matplotlib_route)
    size_fast, size_default = len(compose_png(1)), len(compose_png(6))
    print("\n512×512 CT slice + 512×512 heatmap")
    print(f"  radpipe compose (no PNG)        {composes:8.0f} /s   (target >= 300)")
    print(f"  radpipe compose + PNG level 1   {png_fast:8.0f} /s   {size_fast / 1024:.0f} KiB")
    print(
        f"  radpipe compose + PNG level 6   {png_default:8.0f} /s   {size_default / 1024:.0f} KiB"
    )
    print(f"  matplotlib imshow + savefig     {mpl:8.0f} /s")
    print(f"  end to end with PNG: radpipe {png_fast / mpl:.1f}x matplotlib (target >= 5x)")
    report("one overlay PNG (seconds each)", 1 / png_fast, {"matplotlib imshow + savefig": 1 / mpl})

    big = make_phantom(shape=(120, 512, 512), spacing=(2.5, 0.7, 0.7), tumours=3, seed=1).ct
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        write_all_slices(big, Path(folder) / "one", workers=1, window="soft-tissue")
        one = time.perf_counter() - start
        start = time.perf_counter()
        write_all_slices(big, Path(folder) / "all", workers=2, window="soft-tissue")
        both = time.perf_counter() - start
    print(f"\n--all-slices, 120 axial 512×512 slices with annotations: 1 process {one:.2f} s, "
          f"2 processes {both:.2f} s ({one / both:.2f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
