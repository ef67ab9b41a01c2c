"""``radpipe view``: the browser viewer on 127.0.0.1 with a random token."""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from radpipe.cli.console import stdout


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def build_session(
    path: Path,
    masks: list[str],
    heatmap: Path | None,
    *,
    keep_phi: bool = False,
    label_names: str | None = None,
) -> Any:
    """A viewer session for a scan (with masks / heatmap) or a dataset root."""
    from radpipe.io import load
    from radpipe.io.heatmaps import read_heatmap
    from radpipe.io.mask_sources import load_mask_file, parse_label_names
    from radpipe.io.sources import check_location
    from radpipe.masks import MaskSet
    from radpipe.viewer.app import Session
    from radpipe.viewer.state import make_scan

    source = Path(path)
    if (
        check_location(str(source)) == "folder"
        and source.is_dir()
        and not masks
        and heatmap is None
        and _is_dataset_root(source)
    ):
        return _dataset_session(source, keep_phi=keep_phi)
    volume = load(source)
    found = MaskSet(volume.affine.copy(), {}, [])
    for spec in masks:
        name, sep, file = spec.partition("=")
        part = load_mask_file(Path(file if sep else spec), volume, name=name if sep else None,
                              label_names=parse_label_names(label_names))  # fmt: skip
        found.masks.update(part.masks)
    heat = read_heatmap(heatmap) if heatmap is not None else None
    return Session(make_scan(volume, masks=found, heatmap=heat, keep_phi=keep_phi))


def _is_dataset_root(folder: Path) -> bool:
    """A folder whose subfolders hold series (more than one patient folder)."""
    subfolders = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return len(subfolders) > 1 and not any(
        p.is_file() and p.suffix == ".dcm" for p in folder.iterdir()
    )


def _dataset_session(root: Path, *, keep_phi: bool) -> Any:
    import tempfile

    from radpipe.io.catalog import open_catalog, scan
    from radpipe.io.mask_sources import load_catalog_patient
    from radpipe.viewer.app import Session
    from radpipe.viewer.state import make_scan

    work = tempfile.mkdtemp(prefix="radpipe-view-")
    catalog_path = Path(work) / "catalog.sqlite"
    catalog, _ = scan(root, catalog_path, keep_phi=keep_phi)
    with catalog:
        patients = [
            {"patient": row["patient"], "series": row["series"]} for row in catalog.patients()
        ]

    def opener(patient: str) -> Any:
        with open_catalog(catalog_path) as found:
            annotated = load_catalog_patient(found, patient)
            if annotated is not None:
                image, masks = annotated
                return make_scan(image, masks=masks, keep_phi=keep_phi)
            images = [e for e in found.series(patient=patient, role="image") if e.format == "DICOM"]
            if not images:
                raise KeyError(patient)
            return make_scan(found.load(images[0]), keep_phi=keep_phi)

    return Session(patients=patients, opener=opener)


def view(
    path: Annotated[
        Path, typer.Argument(help="Scan (series folder, file, NIfTI) or a dataset root.")
    ],
    mask: Annotated[
        list[str] | None, typer.Option("--mask", help="NAME=FILE (repeatable).")
    ] = None,
    heatmap: Annotated[
        Path | None, typer.Option("--heatmap", help="3-D heatmap on the scan's grid.")
    ] = None,
    labels: Annotated[
        str | None, typer.Option("--labels", help="Names of label values, e.g. 1=liver,2=tumor.")
    ] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port (default: a free one).")] = None,
    host: Annotated[
        str, typer.Option("--host", help="Interface; anything but 127.0.0.1 exposes the data.")
    ] = "127.0.0.1",
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Do not open a browser.")
    ] = False,
    keep_phi: Annotated[
        bool, typer.Option("--keep-phi", help="Show real patient identifiers.")
    ] = False,
) -> None:
    """Open the interactive three-pane viewer in the browser."""
    from radpipe._optional import import_optional
    from radpipe.viewer.app import create_app

    uvicorn = import_optional("uvicorn", extra="viewer")
    session = build_session(path, mask or [], heatmap, keep_phi=keep_phi, label_names=labels)
    chosen = port or free_port(host)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"radpipe: warning: serving on {host} exposes the images to the network",
            file=sys.stderr,
        )
    url = f"http://{host}:{chosen}/?token={session.token}"
    stdout.print(f"radpipe viewer at {url}  (Ctrl-C to stop)")
    if not no_browser:
        import webbrowser

        webbrowser.open(url)
    uvicorn.run(create_app(session), host=host, port=chosen, log_level="warning")
