"""PNG output of rendered images and of whole volumes slice by slice (both cores)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from radpipe.errors import FormatError
from radpipe.io.atomic import atomic_path
from radpipe.volume import Volume

#: zlib level for PNGs: level 1 is ~3× faster than Pillow's default and, on CT, within a few
#: percent of its size (see benchmarks/bench_overlay.py).
COMPRESS_LEVEL = 1


def write_png(
    image: NDArray[np.uint8],
    path: str | Path,
    *,
    overwrite: bool = False,
    compress_level: int = COMPRESS_LEVEL,
    inputs: Sequence[str | Path] = (),
    input_folders: Sequence[str | Path] = (),
) -> Path:
    """Write an (H, W) grey or (H, W, 3) RGB uint8 image as PNG, atomically; it may not
    replace one of ``inputs`` or lie in one of ``input_folders`` (see ``guard_output``)."""
    from PIL import Image

    target = Path(path)
    if target.suffix.lower() != ".png":
        raise FormatError(f"{target}: the output must be a .png file")
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise FormatError(f"a PNG needs (H, W) or (H, W, 3) uint8, got {image.shape} {image.dtype}")
    with atomic_path(
        target, overwrite=overwrite, inputs=inputs, input_folders=input_folders
    ) as temporary:
        Image.fromarray(image).save(temporary, format="PNG", compress_level=compress_level)
    return target


#: Volumes handed to forked workers without pickling (set just before the pool forks).
_FORK_SHARED: dict[str, Any] = {}


def _render_chunk(job: tuple[Any, list[int], str, dict[str, Any], str, int]) -> list[str]:
    from radpipe.render import view

    shared, indices, plane, options, folder, digits = job
    volume, options = _FORK_SHARED[shared] if isinstance(shared, str) else (shared, options)
    written = []
    for index in indices:
        image = view(volume, plane=plane, index=index, **options)
        path = Path(folder) / f"{plane}_{index:0{digits}d}.png"
        written.append(str(write_png(image, path, overwrite=True)))
    return written


def write_all_slices(
    volume: Volume,
    folder: str | Path,
    *,
    plane: str = "axial",
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    overwrite: bool = False,
    **options: Any,
) -> list[Path]:
    """Render every slice of ``volume`` in ``plane`` to ``folder/<plane>_NNN.png``.

    Work is split into one chunk of slices per worker process (the volume travels once per
    chunk). ``options`` go to :func:`radpipe.render.view` (window, heatmap, style, mask …).
    The folder appears only when every slice is written; it may not overlap the volume's input
    files, and ``overwrite`` replaces only an earlier radpipe output folder.
    """
    from radpipe.io.atomic import atomic_folder, inputs_of
    from radpipe.parallel import default_workers, run_map
    from radpipe.render import Plane, _axis, canonical, prepared

    chosen = Plane(plane)
    volume, options = prepared(volume, options)
    target = Path(folder)
    count = canonical(volume).spatial_shape[_axis(chosen)]
    digits = max(3, len(str(count - 1)))
    parts = max(1, min(workers or default_workers(), count))
    chunks = [list(range(count))[start::parts] for start in range(parts)]
    import multiprocessing

    token = f"slices-{id(volume)}"
    forked = "fork" in multiprocessing.get_all_start_methods()
    shared: Any = token if forked else volume
    _FORK_SHARED[token] = (volume, options)  # inherited by forked workers, never pickled
    written: list[Path] = []
    try:
        with atomic_folder(target, overwrite=overwrite, **inputs_of(volume)) as staging:
            sent = {} if forked else options
            jobs = [(shared, chunk, chosen.value, sent, str(staging), digits) for chunk in chunks]
            for paths in run_map(_render_chunk, jobs, workers=parts, chunksize=1):
                written.extend(target / Path(p).name for p in paths)
                if progress is not None:
                    progress(len(paths))
    finally:
        _FORK_SHARED.pop(token, None)
    return sorted(written)
