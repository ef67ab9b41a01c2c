"""NeRF export of the 512×512×300 phantom: radpipe (window + PNG on both cores + JSON) against
the straightforward route (nibabel load, min-max, a per-slice Pillow save loop).

    .venv/bin/python benchmarks/bench_nerf.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import radpipe
from common import BENCH_DIR, report
from radpipe.export.nerf import export_nerf
from radpipe.phantom import make_phantom


def phantom_nifti() -> Path:
    path = BENCH_DIR / "phantom_300.nii.gz"
    if not path.exists():
        BENCH_DIR.mkdir(parents=True, exist_ok=True)
        ct = make_phantom(shape=(300, 512, 512), spacing=(1.0, 0.7, 0.7), tumours=4, seed=1).ct
        radpipe.save(ct, path)
    return path


def straightforward(path: Path, folder: Path) -> None:
    import nibabel as nib
    from PIL import Image

    volume = np.asarray(nib.load(path).dataobj).astype(np.float32)
    low, high = volume.min(), volume.max()
    scaled = ((volume - low) / (high - low) * 255).astype(np.uint8)
    frames = []
    for k in range(scaled.shape[2]):
        name = f"{k + 1:03d}.png"
        Image.fromarray(scaled[:, :, k]).save(folder / name)
        frames.append({"file_path": name, "transform_matrix": np.eye(4).tolist()})
    (folder / "transforms.json").write_text(json.dumps({"frames": frames}))


def main() -> None:
    path = phantom_nifti()
    with tempfile.TemporaryDirectory() as work:
        start = time.perf_counter()
        volume = radpipe.load(path)
        export_nerf(volume, Path(work) / "ours")
        ours = time.perf_counter() - start
        peer_folder = Path(work) / "peer"
        peer_folder.mkdir()
        start = time.perf_counter()
        straightforward(path, peer_folder)
        peer = time.perf_counter() - start
        ours_size = sum(p.stat().st_size for p in (Path(work) / "ours").glob("*.png"))
        peer_size = sum(p.stat().st_size for p in peer_folder.glob("*.png"))
    report(
        "NeRF export of a 512×512×300 NIfTI (load included)", ours, {"nibabel + Pillow loop": peer}
    )
    print(
        f"  speed-up {peer / ours:.1f}x (target >= 3x); "
        f"PNG bytes {ours_size / peer_size:.2f}x the loop's"
    )


if __name__ == "__main__":
    main()
