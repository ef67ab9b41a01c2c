"""The model card: everything needed to apply a trained network the way it was trained
(classes, spacing, intensity mapping, input size, architecture), with the training data summary
and validation figures, stored as ``model.json`` beside the weights."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from radpipe.errors import ModelError

CARD_NAME = "model.json"
WEIGHTS_NAME = "model.pt"
CHECKPOINT_NAME = "checkpoint.pt"
CARD_FORMAT = "radpipe-model"
CARD_VERSION = 1


@dataclass
class ModelCard:
    """How a segmentation model was made and how to apply it.

    Attributes
    ----------
    name : the model's name (SEG algorithm name, report headers)
    dimensions : 2 (slice by slice) or 3 (patches)
    classes : label value → name, background (0) included
    in_channels : image channels the network takes
    spacing_mm : (slice, row, column) spacing of the training samples; a 2-D model uses only
        the in-plane part
    input_size : sample size ((H, W) or (D, H, W)) seen in training
    patch_size : the window of sliding-window inference (the training patch for 3-D)
    preprocessing : the dataset's preprocessing settings (normalization, window, …)
    network : architecture and its parameters (MONAI class and keyword arguments)
    training : what it was trained on and how (pseudonymised patients, epochs, seed, …)
    validation : figures on the held-out patients (mean Dice per class, per epoch best)
    postprocessing : what is done to the label map after the argmax:
        ``{"largest_component": [class values]}`` keeps only each listed class's largest
        connected part, ``"convex_hull": [class values]`` then grows each listed class to its
        convex hull slice by slice, ``"per_slice": true`` takes the largest part per slice
    radpipe_version : the radpipe that trained it
    """

    name: str
    dimensions: int
    classes: dict[int, str]
    in_channels: int
    spacing_mm: tuple[float, float, float]
    input_size: tuple[int, ...]
    patch_size: tuple[int, ...]
    preprocessing: dict[str, Any]
    network: dict[str, Any]
    training: dict[str, Any] = field(default_factory=dict)
    validation: dict[str, Any] = field(default_factory=dict)
    postprocessing: dict[str, Any] = field(default_factory=dict)
    radpipe_version: str = ""

    @property
    def largest_component_classes(self) -> list[int]:
        """Classes reduced to their largest connected part after the argmax."""
        return [int(v) for v in self.postprocessing.get("largest_component", [])]

    @property
    def convex_hull_classes(self) -> list[int]:
        """Classes grown to their convex hull in each slice, after the largest part."""
        return [int(v) for v in self.postprocessing.get("convex_hull", [])]

    @property
    def largest_component_per_slice(self) -> bool:
        """Whether that rule works slice by slice (2-D models: chosen so on their slices)."""
        return bool(self.postprocessing.get("per_slice", False))

    @property
    def out_channels(self) -> int:
        """Network outputs: one per class, background included."""
        return max(self.classes) + 1

    def to_json(self) -> str:
        """The card as JSON text."""
        document = asdict(self)
        document["classes"] = {str(k): v for k, v in sorted(self.classes.items())}
        document["format"] = CARD_FORMAT
        document["format_version"] = CARD_VERSION
        return json.dumps(document, indent=2)


def read_card(folder: str | Path) -> ModelCard:
    """The card of a model folder.

    Raises
    ------
    ModelError
        If ``folder`` holds no radpipe model (no ``model.json`` or no weights), or the card is
        damaged or of another format version.
    """
    root = Path(folder)
    card_path = root / CARD_NAME
    if not root.is_dir():
        raise ModelError(f"{root}: not a model folder (train one with `radpipe train`)")
    if not card_path.is_file():
        raise ModelError(
            f"{root}: no {CARD_NAME}; a model folder written by `radpipe train` holds "
            f"{CARD_NAME} and {WEIGHTS_NAME}"
        )
    try:
        document = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{card_path}: not a readable model card ({exc}); retrain") from None
    if not isinstance(document, dict) or document.get("format") != CARD_FORMAT:
        raise ModelError(f"{card_path}: not a radpipe model card")
    if document.get("format_version") != CARD_VERSION:
        raise ModelError(
            f"{card_path}: model card version {document.get('format_version')}; this radpipe "
            f"reads version {CARD_VERSION}"
        )
    try:
        card = ModelCard(
            name=str(document["name"]),
            dimensions=int(document["dimensions"]),
            classes={int(k): str(v) for k, v in document["classes"].items()},
            in_channels=int(document["in_channels"]),
            spacing_mm=tuple(float(v) for v in document["spacing_mm"]),  # type: ignore[arg-type]
            input_size=tuple(int(v) for v in document["input_size"]),
            patch_size=tuple(int(v) for v in document["patch_size"]),
            preprocessing=dict(document.get("preprocessing") or {}),
            network=dict(document["network"]),
            training=dict(document.get("training") or {}),
            validation=dict(document.get("validation") or {}),
            postprocessing=dict(document.get("postprocessing") or {}),
            radpipe_version=str(document.get("radpipe_version", "")),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelError(f"{card_path}: incomplete model card ({exc!r} missing or wrong)") from None
    if card.dimensions not in (2, 3) or len(card.spacing_mm) != 3 or 0 not in card.classes:
        raise ModelError(f"{card_path}: inconsistent model card (dimensions, spacing or classes)")
    unknown: list[Any]
    try:
        named = card.largest_component_classes + card.convex_hull_classes
        unknown = [v for v in named if v not in card.classes or v == 0]
    except (TypeError, ValueError):
        unknown = [card.postprocessing.get("largest_component"),
                   card.postprocessing.get("convex_hull")]  # fmt: skip
    if unknown:
        raise ModelError(
            f"{card_path}: postprocessing names classes the model does not have ({unknown}); "
            f"list class values of {sorted(v for v in card.classes if v)} or retrain"
        )
    if not (root / WEIGHTS_NAME).is_file():
        raise ModelError(f"{root}: the card has no weights beside it ({WEIGHTS_NAME} missing)")
    return card
