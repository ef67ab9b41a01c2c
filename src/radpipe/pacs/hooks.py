"""What a research node does with each study it receives: segment its series with a model,
analyse its masks (or the model's), and keep a catalog of what arrived up to date."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from radpipe.masks import MaskSet
from radpipe.volume import Volume

Inputs = Iterable[tuple[str, Volume, MaskSet]]


def study_hook(
    *,
    results: Path,
    model: Path | None = None,
    analyze: bool = False,
    catalog: Path | None = None,
    device: str = "auto",
) -> Callable[[Path], None]:
    """A ``StorageNode.on_study`` callback writing ``results/<study UID>/labels`` (with a
    model) and ``results/<study UID>/report`` (with ``analyze``)."""

    def run(study: Path) -> None:
        from radpipe.export.report import analyse_to_reports

        target = results / study.name
        labelled: dict[str, Path] = {}
        if model is not None:
            from radpipe.export.segmentation import segment_tree

            _, _, labelled = segment_tree(study, target / "labels", model=model, device=device,
                                       workers=1, overwrite=True)  # fmt: skip
        if analyze:
            from radpipe.catalog.patients import analysis_inputs

            inputs: Inputs = (
                _predicted_inputs(study, labelled) if labelled else analysis_inputs(study)
            )
            analyse_to_reports(inputs, target / "report", pictures=False, overwrite=True)
        if catalog is not None:
            from radpipe.catalog.store import scan

            scan(study.parent, catalog)

    return run


def _predicted_inputs(study: Path, labelled: dict[str, Path]) -> list[tuple[str, Volume, MaskSet]]:
    """(patient, image, masks) of each segmented series (by series UID): its image with the
    model's labels."""
    import tempfile

    from radpipe.catalog.store import scan as scan_catalog
    from radpipe.io.mask_sources import label_names_from_sidecar, load_mask_file

    found: list[tuple[str, Volume, MaskSet]] = []
    with tempfile.TemporaryDirectory(prefix="radpipe-node-") as work:
        catalog, _ = scan_catalog(study, Path(work) / "c.sqlite")
        with catalog:
            entries = [e for e in catalog.series(role="image") if e.shape and len(e.shape) == 3]
            for entry in entries:
                label_file = labelled.get(str(entry.series_uid))
                if label_file is None:
                    continue
                image = catalog.load(entry, on_duplicate="first")
                names = label_names_from_sidecar(label_file)
                masks = load_mask_file(label_file, image, label_names=names)
                found.append((entry.patient, image, masks))
    return found
