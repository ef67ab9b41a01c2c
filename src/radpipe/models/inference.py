"""Running a trained model on an image: the card's preprocessing, sliding-window inference
(slice by slice for 2-D models), and the result put back on the input's exact geometry as a
label map with per-class probability heatmaps."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from radpipe._optional import import_optional
from radpipe.errors import ModelError
from radpipe.models.card import WEIGHTS_NAME, ModelCard, read_card
from radpipe.models.intensity import apply_intensity
from radpipe.models.networks import build_network, choose_device
from radpipe.volume import Heatmap, LabelMap, Volume

#: Slices per forward pass of a 2-D model.
SLICE_BATCH = 16


@dataclass
class Model:
    """A loaded model: its card, its network (in eval mode) and the device it runs on."""

    folder: Path
    card: ModelCard
    network: Any
    device: Any


@dataclass
class Segmentation:
    """A model's result on one image, on the image's own grid.

    Attributes
    ----------
    labels : LabelMap, the most probable class of every voxel (names from the card)
    probabilities : class value → Heatmap of that class's probability (0 … 1), for the
        classes asked for
    """

    labels: LabelMap
    probabilities: dict[int, Heatmap] = field(default_factory=dict)


def load_model(folder: str | Path, *, device: str = "auto") -> Model:
    """The model in ``folder`` (written by :func:`radpipe.models.training`).

    Raises
    ------
    ModelError
        If the folder is not a model, or its weights do not fit its card.
    """
    torch = import_optional("torch", extra="ml")
    card = read_card(folder)
    chosen = choose_device(device)
    network = build_network(card.network)
    try:
        state = torch.load(Path(folder) / WEIGHTS_NAME, map_location=chosen, weights_only=True)
        network.load_state_dict(state)
    except (RuntimeError, OSError, EOFError, ValueError) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise ModelError(f"{folder}: the weights do not fit the model card ({reason})") from None
    network.to(chosen).eval()
    return Model(Path(folder), card, network, chosen)


def predict_probabilities(
    network: Any, image: NDArray[Any], card: ModelCard, device: Any, *, mirror: bool = False
) -> NDArray[np.float32]:
    """Class probabilities (C, *image.shape) of an image already on the model's grid and in
    its intensity units: (H, W) or a stack (N, H, W) of slices for a 2-D model, (D, H, W) for a
    3-D one; windows of ``card.patch_size`` overlap by a quarter and are blended with Gaussian
    weights (MONAI ``sliding_window_inference``). With ``mirror`` the probabilities are the
    mean over the image and its mirror images along each in-plane axis (and both; for 3-D
    each axis): test-time augmentation, four passes."""
    torch = import_optional("torch", extra="ml")
    inferers = import_optional("monai.inferers", extra="ml")
    intensity = card.preprocessing.get("intensity", {"mode": "none"})
    if card.dimensions == 2:
        stack = image[None] if image.ndim == 2 else image
        parts = []
        for first in range(0, stack.shape[0], SLICE_BATCH):
            group = np.stack(
                [apply_intensity(s, intensity) for s in stack[first : first + SLICE_BATCH]]
            )
            parts.append(_mirrored(torch, inferers, network, group[:, None], card, device,
                                   mirror=mirror))  # fmt: skip
        probabilities = np.concatenate(parts, axis=0).transpose(1, 0, 2, 3)
        return probabilities[:, 0] if image.ndim == 2 else probabilities
    volume = apply_intensity(image, intensity)[None, None]
    whole: NDArray[np.float32] = _mirrored(
        torch, inferers, network, volume, card, device, mirror=mirror
    )[0]
    return whole


def _mirrored(
    torch: Any, inferers: Any, network: Any, batch: NDArray[np.float32], card: ModelCard,
    device: Any, *, mirror: bool,
) -> NDArray[np.float32]:  # fmt: skip
    """:func:`_window`, or its mean over mirror images of ``batch`` (B, 1, *spatial)."""
    if not mirror:
        return _window(torch, inferers, network, batch, card, device)
    spatial = tuple(range(2, batch.ndim))
    flips: list[tuple[int, ...]] = [(), (spatial[-1],), (spatial[-2],)]
    flips.append((spatial[-1], spatial[-2]) if len(spatial) == 2 else (spatial[0],))
    total: NDArray[np.float32] | None = None
    for axes in flips:
        flipped = np.flip(batch, axes) if axes else batch
        probabilities = _window(torch, inferers, network, flipped, card, device)
        probabilities = np.flip(probabilities, axes) if axes else probabilities
        total = probabilities.copy() if total is None else total + probabilities
    assert total is not None
    result: NDArray[np.float32] = (total / np.float32(len(flips))).astype(np.float32)
    return result


def _window(
    torch: Any, inferers: Any, network: Any, batch: NDArray[np.float32], card: ModelCard,
    device: Any,
) -> NDArray[np.float32]:  # fmt: skip
    with torch.inference_mode():
        inputs = torch.from_numpy(np.ascontiguousarray(batch)).to(device)
        logits = inferers.sliding_window_inference(
            inputs, roi_size=card.patch_size, sw_batch_size=4 if card.dimensions == 3 else 16,
            predictor=network, overlap=0.25, mode="gaussian",
        )  # fmt: skip
        probabilities: NDArray[np.float32] = torch.softmax(logits, dim=1).float().cpu().numpy()
    return probabilities


def model_grid(image: Volume, card: ModelCard) -> Volume:
    """The image as the model was trained to see it: reoriented as its dataset was (when it
    was built with ``--orient``), resampled to the card's spacing (only in-plane for a 2-D
    model) and intensity-mapped as its dataset was (window, normalisation)."""
    from radpipe.preprocess import preprocess
    from radpipe.windowing import parse_window

    settings = card.preprocessing
    target = list(card.spacing_mm)
    if card.dimensions == 2:
        target[0] = image.spacing[0]
    orient = settings.get("orient")
    if orient:  # the dataset's one orientation (the spacing is then in its axis order)
        image = image.reoriented(str(orient))
        if card.dimensions == 2:
            target[0] = image.spacing[0]
    close = np.allclose(image.spacing, target, rtol=1e-3)
    window = settings.get("window")
    processed, _ = preprocess(
        image, spacing=None if close else target,
        normalization=settings.get("normalization") or "none",
        window=parse_window(window) if window else None,
    )  # fmt: skip
    return processed


def segment(
    image: Volume,
    model: Model | str | Path,
    *,
    probabilities: list[int] | None = None,
    device: str = "auto",
    mirror: bool = False,
    postprocess: bool = True,
) -> Segmentation:
    """Segment ``image`` with a trained model; the result lies on ``image``'s exact grid.

    Parameters
    ----------
    image : Volume, a grey (S, R, C) image (one slice is fine for a 2-D model)
    model : a loaded :class:`Model` or its folder
    probabilities : classes whose probability heatmaps to return (default none)
    device : auto, cpu or cuda (when ``model`` is a folder)
    mirror : average over mirror images too (test-time augmentation; four times the work)
    postprocess : apply the card's post-processing (keep the largest connected part of the
        classes it names, grow those it names to their convex hull per slice); False gives
        the network's argmax as it is

    Raises
    ------
    ModelError
        If the image's channels or dimensions do not fit the model, or a class asked for is
        not one of the model's.

    Examples
    --------
    >>> from radpipe.models import segment  # doctest: +SKIP
    >>> result = segment(radpipe.load("ct/"), "liver-model", probabilities=[2])  # doctest: +SKIP
    >>> result.labels.labels  # doctest: +SKIP
    {1: 'liver', 2: 'tumor'}
    """
    from radpipe.preprocess import resample

    loaded = model if isinstance(model, Model) else load_model(model, device=device)
    card = loaded.card
    channels = image.array.shape[3] if image.array.ndim == 4 else 1
    if channels != card.in_channels:
        raise ModelError(
            f"{image.source_name}: the model {card.name!r} takes {card.in_channels} channel(s); "
            f"the image has {channels} (shape {image.shape})"
        )
    if card.dimensions == 3 and min(image.spatial_shape) < 2:
        raise ModelError(f"{image.source_name}: a 3-D model needs a volume, not one slice")
    wanted = list(probabilities or [])
    unknown = [v for v in wanted if v not in card.classes or v == 0]
    if unknown:
        raise ModelError(
            f"class {unknown[0]} is not one of the model's: "
            + ", ".join(f"{v} {n}" for v, n in card.classes.items() if v)
        )
    grid = model_grid(image, card)
    scores = predict_probabilities(loaded.network, grid.array, card, loaded.device,
                                   mirror=mirror)  # fmt: skip
    names = {v: n for v, n in card.classes.items() if v != 0}
    kept = card.largest_component_classes if postprocess else []
    hulls = card.convex_hull_classes if postprocess else []
    per_slice = card.largest_component_per_slice
    same = grid.same_grid(image)
    if same:
        chosen = _finished(scores.argmax(axis=0).astype(np.uint8), kept, hulls, per_slice=per_slice)
        labels = LabelMap(chosen, image.affine, labels=names)
        heatmaps = {
            v: Heatmap(scores[v], image.affine, source=f"{card.name}: p({names[v]})")
            for v in wanted
        }
        return Segmentation(labels, heatmaps)
    # back onto the input's grid: each class's probability resampled linearly, then argmax.
    # The scores are padded by their edge voxel so the input's outer half voxel takes the edge
    # value; beyond that a voxel is background (probability 1 for class 0, 0 for the others).
    padded_affine = grid.affine.copy()
    padded_affine[:3, 3] -= grid.affine[:3, :3] @ np.ones(3)
    placed = np.empty((scores.shape[0], *image.spatial_shape), np.float32)
    for value in range(scores.shape[0]):
        padded = np.pad(scores[value], 1, mode="edge")
        on_input = resample(Volume(padded, padded_affine), reference=image,
                            fill=1.0 if value == 0 else 0.0)  # fmt: skip
        placed[value] = on_input.array
    chosen = _finished(placed.argmax(axis=0).astype(np.uint8), kept, hulls, per_slice=per_slice)
    labels = LabelMap(chosen, image.affine, labels=names)
    heatmaps = {
        v: Heatmap(placed[v], image.affine, source=f"{card.name}: p({names[v]})") for v in wanted
    }
    return Segmentation(labels, heatmaps)


def _finished(
    labels: NDArray[np.uint8], largest_component: list[int], convex_hull: list[int], *,
    per_slice: bool,
) -> NDArray[np.uint8]:  # fmt: skip
    """The argmax with the card's post-processing: the largest part slice by slice as the card
    says (2-D models), else on the volume (a single slice in 2-D); then the convex hulls, always
    slice by slice."""
    from radpipe.models.postprocess import (
        fill_convex_hull,
        keep_largest_component,
        keep_largest_per_slice,
    )

    if largest_component and (per_slice or labels.shape[0] == 1):
        labels = keep_largest_per_slice(labels, largest_component).astype(np.uint8, copy=False)
    elif largest_component:
        labels = keep_largest_component(labels, largest_component).astype(np.uint8, copy=False)
    if convex_hull:
        labels = fill_convex_hull(labels, convex_hull).astype(np.uint8, copy=False)
    return labels
