"""Scoring predicted label maps against reference ones: per label Dice, 95 % Hausdorff distance
in mm (MONAI's metric on the physical spacing) and volume difference, per case and as means;
files matched by name when whole folders are compared."""

from __future__ import annotations

import html
import json
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from radpipe._optional import import_optional
from radpipe.errors import FormatError
from radpipe.volume import LabelMap, Volume

_ROLE_SUFFIX = re.compile(
    r"[_\-.](pred|prediction|predicted|seg|segmentation|labels?|mask|truth|gt|ref|reference)$", re.I
)


@dataclass
class LabelScore:
    """One label of one case."""

    case: str
    label: int
    name: str
    dice: float
    hausdorff95_mm: float | None
    predicted_ml: float
    reference_ml: float
    volume_difference_ml: float
    volume_difference_percent: float | None


def _as_labels(volume: Volume) -> LabelMap:
    return volume if isinstance(volume, LabelMap) else LabelMap.from_volume(volume)


def score_case(predicted: Volume, reference: Volume, *, case: str = "case") -> list[LabelScore]:
    """Scores of every label in either map, the prediction placed on the reference's grid by
    world position (nearest neighbour) when the grids differ.

    Labels are paired by name when both maps name them, else by value.
    """
    from radpipe.placement import labels_on

    truth = _as_labels(reference)
    guess = labels_on(_as_labels(predicted), truth, name=f"prediction of {case}")
    guess_names = getattr(predicted, "labels", {}) or {}
    truth_names = truth.labels or {}
    pairs: dict[int, tuple[int, str]] = {}  # reference value → (predicted value, name)
    by_name = {name: value for value, name in guess_names.items()}
    if truth_names and guess_names and set(by_name) & set(truth_names.values()):
        for value, name in truth_names.items():
            pairs[value] = (by_name.get(name, -1), name)
        for name, value in by_name.items():
            if name not in truth_names.values():
                pairs[-value] = (value, name)  # predicted only: no reference voxels
        for value in (int(v) for v in np.unique(truth.array)):
            if value and value not in truth_names:  # an unnamed reference label: by value
                pairs[value] = (value, guess_names.get(value) or f"label {value}")
    else:
        values = {int(v) for v in np.unique(truth.array)} | {int(v) for v in np.unique(guess.array)}
        for value in sorted(values - {0}):
            pairs[value] = (
                value,
                truth_names.get(value) or guess_names.get(value) or f"label {value}",
            )
    voxel_ml = float(np.prod(truth.spacing)) / 1000.0
    scores = []
    for reference_value, (predicted_value, name) in sorted(
        pairs.items(), key=lambda kv: abs(kv[0])
    ):
        t = (
            truth.array == reference_value
            if reference_value > 0
            else np.zeros(truth.spatial_shape, bool)
        )
        p = (
            guess.array == predicted_value
            if predicted_value > 0
            else np.zeros(truth.spatial_shape, bool)
        )
        total = int(t.sum()) + int(p.sum())
        dice = 1.0 if total == 0 else 2.0 * int((p & t).sum()) / total
        predicted_ml, reference_ml = float(p.sum()) * voxel_ml, float(t.sum()) * voxel_ml
        scores.append(LabelScore(
            case=case, label=abs(reference_value), name=name, dice=dice,
            hausdorff95_mm=_hausdorff95(p, t, truth.spacing),
            predicted_ml=predicted_ml, reference_ml=reference_ml,
            volume_difference_ml=predicted_ml - reference_ml,
            volume_difference_percent=(predicted_ml - reference_ml) / reference_ml * 100
            if reference_ml else None,
        ))  # fmt: skip
    return scores


def _hausdorff95(
    predicted: np.ndarray, reference: np.ndarray, spacing: tuple[float, ...]
) -> float | None:
    """MONAI's 95th-percentile symmetric Hausdorff distance in mm (None if either is empty)."""
    if not predicted.any() or not reference.any():
        return None
    torch = import_optional("torch", extra="ml")
    metrics = import_optional("monai.metrics", extra="ml")
    crop = tuple(
        slice(max(0, int(lo) - 1), int(hi) + 2)
        for lo, hi in zip(
            np.minimum(np.argwhere(predicted).min(0), np.argwhere(reference).min(0)),
            np.maximum(np.argwhere(predicted).max(0), np.argwhere(reference).max(0)),
            strict=True,
        )
    )  # the surfaces only: distances do not change outside their bounding box
    both = np.stack([predicted[crop], reference[crop]])[:, None].astype(np.float32)
    import warnings

    with warnings.catch_warnings():  # MONAI's deprecation notes about its own internals
        warnings.simplefilter("ignore", FutureWarning)
        distance = metrics.compute_hausdorff_distance(
            torch.from_numpy(both[:1]), torch.from_numpy(both[1:]), include_background=True,
            percentile=95, spacing=[float(v) for v in spacing],
        )  # fmt: skip
    value = float(distance.reshape(-1)[0])
    return value if math.isfinite(value) else None


def case_name(path: str | Path) -> str:
    """The case a label file belongs to: its name without suffixes and a role word
    (``p01_pred.nii.gz`` → ``p01``)."""
    from radpipe.io import registry

    stem = registry.strip_suffix(Path(path).name)
    return _ROLE_SUFFIX.sub("", stem)


def _label_files(folder: Path) -> list[Path]:
    from radpipe.io import registry

    return [p for p in sorted(folder.iterdir()) if p.is_file() and registry.format_of(str(p))]


def matched_files(
    predicted: str | Path, reference: str | Path
) -> tuple[list[tuple[str, Path, Path]], list[str]]:
    """Pairs (case, predicted file, reference file) of two files or two folders, and the
    cases found on one side only."""
    first, second = Path(predicted), Path(reference)
    if first.is_file() and second.is_file():
        return [(case_name(second), first, second)], []
    if not (first.is_dir() and second.is_dir()):
        raise FormatError(
            f"{first} and {second}: give two label files or two folders of label files"
        )

    left = {case_name(path): path for path in _label_files(first)}
    right = {case_name(path): path for path in _label_files(second)}
    cases = sorted(set(left) & set(right))
    if not cases:
        raise FormatError(
            f"no case name is in both {first} and {second} (files are matched by name, "
            "ignoring _pred / _seg / _gt endings)"
        )
    alone = sorted(set(left) ^ set(right))
    return [(case, left[case], right[case]) for case in cases], alone


@dataclass
class Evaluation:
    """Scores of every case and label, and what could not be matched."""

    scores: list[LabelScore]
    unmatched: list[str]

    def means(self) -> dict[str, dict[str, float | None]]:
        """Per label name: mean Dice, mean HD95 (mm, over cases where defined), mean absolute
        volume difference (%)."""
        summary: dict[str, dict[str, float | None]] = {}
        for name in dict.fromkeys(s.name for s in self.scores):
            rows = [s for s in self.scores if s.name == name]
            distances = [s.hausdorff95_mm for s in rows if s.hausdorff95_mm is not None]
            percents = [abs(s.volume_difference_percent) for s in rows
                        if s.volume_difference_percent is not None]  # fmt: skip
            summary[name] = {
                "cases": len(rows),
                "dice": float(np.mean([s.dice for s in rows])),
                "hausdorff95_mm": float(np.mean(distances)) if distances else None,
                "abs_volume_difference_percent": float(np.mean(percents)) if percents else None,
            }
        return summary

    def write(self, folder: str | Path, *, overwrite: bool = False) -> list[Path]:
        """``scores.csv``, ``scores.json`` and ``summary.html`` in ``folder`` (atomically)."""
        import csv
        import io

        from radpipe.io.atomic import atomic_folder

        target = Path(folder)
        rows = [asdict(s) for s in self.scores]
        columns = list(LabelScore.__dataclass_fields__)
        with atomic_folder(target, overwrite=overwrite) as staging:
            text = io.StringIO()
            writer = csv.DictWriter(text, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
            (staging / "scores.csv").write_text(text.getvalue())
            document = {"scores": rows, "means": self.means(), "unmatched": self.unmatched}
            (staging / "scores.json").write_text(json.dumps(document, indent=2))
            (staging / "summary.html").write_text(self.html())
        return [target / "scores.csv", target / "scores.json", target / "summary.html"]

    def html(self) -> str:
        """A short HTML page: the means per label, then every case."""

        def number(value: Any, digits: int = 3) -> str:
            return "–" if value is None else f"{value:.{digits}f}"

        mean_rows = "".join(
            f"<tr><td>{html.escape(name)}</td><td>{m['cases']}</td><td>{number(m['dice'])}</td>"
            f"<td>{number(m['hausdorff95_mm'], 2)}</td>"
            f"<td>{number(m['abs_volume_difference_percent'], 1)}</td></tr>"
            for name, m in self.means().items()
        )
        case_rows = "".join(
            f"<tr><td>{html.escape(s.case)}</td><td>{html.escape(s.name)}</td>"
            f"<td>{number(s.dice)}</td><td>{number(s.hausdorff95_mm, 2)}</td>"
            f"<td>{s.predicted_ml:.2f}</td><td>{s.reference_ml:.2f}</td>"
            f"<td>{number(s.volume_difference_percent, 1)}</td></tr>"
            for s in self.scores
        )
        unmatched = (
            f"<p>Without a counterpart: {html.escape(', '.join(self.unmatched))}</p>"
            if self.unmatched else ""
        )  # fmt: skip
        style = (
            "body{font-family:sans-serif;max-width:60rem;margin:2rem auto}"
            "table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:right}"
            "td:first-child,td:nth-child(2){text-align:left}"
        )
        return (
            f"<!doctype html><html><head><meta charset='utf-8'><title>radpipe evaluation</title>"
            f"<style>{style}</style></head><body><h1>Segmentation evaluation</h1>"
            f"<h2>Per label (mean over cases)</h2><table><tr><th>label</th><th>cases</th>"
            f"<th>Dice</th><th>HD95 (mm)</th><th>|volume diff.| (%)</th></tr>{mean_rows}</table>"
            f"<h2>Per case</h2><table><tr><th>case</th><th>label</th><th>Dice</th>"
            f"<th>HD95 (mm)</th><th>predicted (ml)</th><th>reference (ml)</th>"
            f"<th>volume diff. (%)</th></tr>{case_rows}</table>{unmatched}</body></html>"
        )


#: ``segment`` on a tree names each series' label map ``<patient>_<NNN>``.
_SERIES_NUMBER = re.compile(r"^(?P<patient>.+)_(?P<number>\d{3})$")


def _evaluate_against_dataset(predicted: Path, root: Path) -> Evaluation:
    """Predictions named by patient (``radpipe segment`` on a tree: ``<pseudonym>_001.nii.gz``)
    against the masks of a dataset root (mask series, label maps, SEG, RTSTRUCT), each
    patient's masks merged by class as ``dataset build`` does (numbered tumours one class)."""
    import tempfile

    from radpipe.catalog.patients import annotated_patients, load_catalog_patient
    from radpipe.catalog.store import scan
    from radpipe.dataset.labels import derive_label_table, merge_masks, paint_labels

    by_patient: dict[str, list[tuple[str, Path]]] = {}
    for path in _label_files(predicted):
        case = case_name(path)
        match = _SERIES_NUMBER.match(case)
        by_patient.setdefault(match["patient"] if match else case, []).append((case, path))
    scores: list[LabelScore] = []
    with tempfile.TemporaryDirectory(prefix="radpipe-evaluate-") as work:
        catalog, _ = scan(root, Path(work) / "catalog.sqlite")
        with catalog:
            annotated = annotated_patients(catalog)
            common = sorted(set(annotated) & set(by_patient))
            if not common:
                raise FormatError(
                    f"no patient of {root} has a prediction in {predicted} (predictions are "
                    "matched by the patient's pseudonym, as `radpipe segment` names them: "
                    f"{', '.join(sorted(by_patient)[:3]) or 'none found'}; the dataset's: "
                    f"{', '.join(annotated[:3]) or 'none with masks'})"
                )
            unscored: list[str] = []
            for patient in common:
                found = load_catalog_patient(catalog, patient)
                if found is None:
                    unscored.extend(f"{case} (no masks of its image)" for case, _ in
                                    by_patient[patient])  # fmt: skip
                    continue
                image, masks = found
                merged = merge_masks(masks.masks, [], keep_numbered=False)
                table = derive_label_table(merged)
                values = {name: value for value, name in table.items()}
                truth = LabelMap(paint_labels(merged, values), masks.affine, labels=table)
                for case, path in by_patient[patient]:
                    guess = _named(path)
                    # the masks belong to one series: a prediction of another series of the
                    # patient (another phase, an MR) is not scored against them
                    if not guess.same_grid(image):
                        unscored.append(f"{case} (not on the grid of the masked series)")
                        continue
                    scores.extend(score_case(guess, truth, case=case))
    alone = sorted(set(annotated) ^ set(by_patient)) + unscored
    return Evaluation(scores, alone)


def evaluate(predicted: str | Path, reference: str | Path) -> Evaluation:
    """Score predicted label files against reference ones: two files, two folders of label
    files matched by case name, or a folder of predictions named by patient against a dataset
    root whose masks are the reference (mask series, label maps, SEG, RTSTRUCT; matched by the
    patient's pseudonym, as ``radpipe segment`` on a tree names its outputs).

    Raises
    ------
    FormatError
        If the inputs are neither two files nor two folders with a case in common.
    ReadError
        If a file cannot be read.

    Examples
    --------
    >>> from radpipe.models import evaluate  # doctest: +SKIP
    >>> evaluate("predictions/", "truth/").means()["tumor"]["dice"]  # doctest: +SKIP
    0.93
    """
    first, second = Path(predicted), Path(reference)
    if first.is_dir() and second.is_dir() and not _label_files(second):
        return _evaluate_against_dataset(first, second)
    pairs, alone = matched_files(predicted, reference)
    scores: list[LabelScore] = []
    for case, predicted_file, reference_file in pairs:
        scores.extend(score_case(_named(predicted_file), _named(reference_file), case=case))
    return Evaluation(scores, alone)


def _named(path: Path) -> LabelMap:
    """A label file with the names of its ``.json`` sidecar, when it has one."""
    from radpipe.io import load
    from radpipe.io.mask_sources import label_names_from_sidecar

    labels = _as_labels(load(path))
    names = label_names_from_sidecar(path)
    return LabelMap(labels.array, labels.affine, labels=names) if names else labels
