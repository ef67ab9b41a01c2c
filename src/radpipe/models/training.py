"""Training a segmentation network on a radpipe dataset file: a MONAI U-Net (2-D on slices,
3-D on patches), Dice + cross-entropy loss, radpipe's loader and augmentation, validation on
held-out patients, checkpoints and a model card written as it goes."""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from radpipe._optional import import_optional
from radpipe.dataset.augment import Augment
from radpipe.dataset.loader import BatchLoader, split_by_patient
from radpipe.dataset.schema import DatasetReader
from radpipe.errors import DatasetError, ModelError
from radpipe.io.atomic import OUTPUT_MARKER, atomic_path, check_folder_replaceable
from radpipe.models.card import CARD_NAME, CHECKPOINT_NAME, WEIGHTS_NAME, ModelCard
from radpipe.models.intensity import apply_intensity, fit_intensity
from radpipe.models.networks import build_network, choose_device, default_network
from radpipe.models.postprocess import POSTPROCESS_CHOICES

#: U-Net strides (2⁴ in 2-D, 2³ in 3-D): network inputs are multiples of these.
SIZE_MULTIPLE = {2: 16, 3: 8}

AUGMENTATIONS = {
    "none": None,
    "light": Augment(flip_horizontal=0.0, rotate=0.5, max_angle=10, crop_zoom=0.3,
                     zoom_range=(0.85, 1.0), brightness=0.2, contrast=0.2),
    "standard": Augment(flip_horizontal=0.5, flip_vertical=0.5, rotate90=0.5, rotate=0.5,
                        max_angle=30, crop_zoom=0.5, zoom_range=(0.75, 1.0), brightness=0.3,
                        contrast=0.3, gamma=0.3),
    # any in-plane orientation and a field of view 0.7–1.4×: cine MR short-axis stacks differ
    # this much between patients (Sunnybrook)
    "strong": Augment(flip_horizontal=0.5, flip_vertical=0.5, rotate=0.9, max_angle=180,
                      crop_zoom=0.8, zoom_range=(0.7, 1.4), brightness=0.3, contrast=0.3,
                      gamma=0.3, noise=0.2),
}  # fmt: skip


@dataclass
class TrainOptions:
    """How to train (the ``radpipe train`` flags).

    Attributes
    ----------
    epochs : passes over the training samples (the total, when resuming)
    max_minutes : stop after the epoch that passes this wall time; the learning rate decays
        to its floor by then (or by the last epoch, whichever comes first)
    batch_size : slices or patches per step
    learning_rate : Adam's step size
    val_fraction : share of patients held out (whole patients, never slices of one)
    val_patients : held-out patients by name (overrides ``val_fraction``)
    seed : makes the split, the order, the augmentation and the initial weights repeatable
    device : auto, cpu or cuda
    patch_size : training window ((H, W) or (D, H, W)); default the whole 2-D slice, or up to
        64 voxels a side in 3-D, rounded down to a multiple of 8
    augment : none, light, standard or strong (see ``AUGMENTATIONS``; 3-D uses flips, tilts)
    foreground_fraction : share of training windows centred on a labelled voxel (the rest on
        background; nnU-Net's third by default); used when ``patch_size`` is smaller than the
        samples
    class_balanced : a labelled centre is a voxel of one of the sample's classes drawn with
        equal chances (a small tumour centred as often as its liver)
    batch_dice : pool the Dice term over the whole batch instead of averaging it per window
        (per window by default: it weighs a small structure's slice as much as a large one's)
    postprocess : ``auto`` keeps only the largest connected part of each class whose held-out
        Dice that raises (nnU-Net's rule; nothing without validation patients), ``largest``
        does so for every class, ``convex`` then also grows every class to its convex hull in
        each slice (a ventricle's blood pool drawn round its papillary muscles), ``none`` never
    name : the model's name (default: the folder's name)
    """

    epochs: int = 50
    max_minutes: float | None = None
    batch_size: int = 8
    learning_rate: float = 2e-3
    val_fraction: float = 0.2
    val_patients: list[str] | None = None
    seed: int = 0
    device: str = "auto"
    patch_size: tuple[int, ...] | None = None
    augment: str = "standard"
    foreground_fraction: float = 0.33
    class_balanced: bool = False
    batch_dice: bool = False
    postprocess: str = "auto"
    name: str | None = None

    def check(self) -> None:
        """Raise ModelError for values no training can use."""
        if self.epochs < 1:
            raise ModelError(f"--epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ModelError(f"--batch-size must be at least 1, got {self.batch_size}")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ModelError(f"--learning-rate must be positive, got {self.learning_rate}")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ModelError(f"--max-minutes must be positive, got {self.max_minutes}")
        if not 0.0 <= self.foreground_fraction <= 1.0:
            raise ModelError(
                f"--foreground-fraction must be within 0 … 1, got {self.foreground_fraction}"
            )
        if self.postprocess not in POSTPROCESS_CHOICES:
            raise ModelError(f"--postprocess must be one of {', '.join(POSTPROCESS_CHOICES)}")
        if self.augment not in AUGMENTATIONS:
            raise ModelError(f"--augment must be one of {', '.join(AUGMENTATIONS)}")


@dataclass
class EpochRecord:
    """One line of ``metrics.csv``."""

    epoch: int
    train_loss: float
    val_dice: dict[str, float]
    seconds: float

    @property
    def mean_dice(self) -> float | None:
        """Mean validation Dice over the classes (None without validation)."""
        return float(np.mean(list(self.val_dice.values()))) if self.val_dice else None


@dataclass
class TrainResult:
    """What a training run left in the model folder."""

    folder: Path
    card: ModelCard
    history: list[EpochRecord] = field(default_factory=list)
    stopped: str = "epochs"
    """Why it ended: ``epochs``, ``time`` (``max_minutes``)."""


def _rounded_size(shape: tuple[int, ...], limit: int | None) -> tuple[int, ...]:
    multiple = SIZE_MULTIPLE[len(shape)]
    size = []
    for extent in shape:
        chosen = min(extent, limit) if limit else extent
        size.append(max(multiple, chosen - chosen % multiple))
    return tuple(size)


def _classes(reader: DatasetReader) -> dict[int, str]:
    names = dict(reader.label_names)
    if not names:
        step = max(1, len(reader) // 200)
        _, masks = reader.read(list(range(0, len(reader), step)))
        names = {int(v): f"label {int(v)}" for v in np.unique(masks) if v != 0}
    if not names:
        raise ModelError(f"{reader.path}: no sample holds a label; nothing to learn")
    return {0: "background", **dict(sorted(names.items()))}


def _pseudonyms(names: NDArray[Any]) -> list[str]:
    """Patients as the card names them: the dataset's pseudonyms (a dataset built with
    ``--keep-phi`` holds real identifiers; the card never does)."""
    from radpipe.privacy import pseudonym

    found = sorted(set(names.astype(str).tolist()))
    return [n if n.startswith("anon-") else pseudonym(n) for n in found]


def _write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path, overwrite=True) as temporary:
        temporary.write_bytes(data)


def _save_torch(torch: Any, state: Any, path: Path) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    _write_bytes(path, buffer.getvalue())


def _write_metrics(path: Path, history: list[EpochRecord], classes: dict[int, str]) -> None:
    names = [classes[k] for k in sorted(classes) if k != 0]
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["epoch", "train_loss", "val_dice_mean", *[f"val_dice_{n}" for n in names],
                     "seconds"])  # fmt: skip
    for record in history:
        mean = record.mean_dice
        writer.writerow([
            record.epoch, f"{record.train_loss:.6f}", "" if mean is None else f"{mean:.6f}",
            *[f"{record.val_dice[n]:.6f}" if n in record.val_dice else "" for n in names],
            f"{record.seconds:.2f}",
        ])  # fmt: skip
    _write_bytes(path, text.getvalue().encode())


def _write_curves(path: Path, history: list[EpochRecord]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, (loss_axis, dice_axis) = pyplot.subplots(1, 2, figsize=(9, 3.4), dpi=100)
    epochs = [r.epoch for r in history]
    loss_axis.plot(epochs, [r.train_loss for r in history], marker=".")
    loss_axis.set(xlabel="epoch", ylabel="training loss (Dice + CE)", title="Loss")
    means = [(r.epoch, r.mean_dice) for r in history if r.mean_dice is not None]
    if means:
        dice_axis.plot(*zip(*means, strict=True), marker=".", label="mean")
        for name in history[-1].val_dice:
            dice_axis.plot(epochs, [r.val_dice.get(name, np.nan) for r in history], label=name)
        dice_axis.legend(fontsize=8)
    else:
        dice_axis.text(0.5, 0.5, "no validation patients", ha="center", va="center",
                       transform=dice_axis.transAxes, color="grey")  # fmt: skip
    dice_axis.set(xlabel="epoch", ylabel="Dice", title="Validation Dice", ylim=(0, 1))
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    pyplot.close(figure)
    _write_bytes(path, buffer.getvalue())


def _prepare_folder(folder: Path, *, resume: bool, overwrite: bool) -> None:
    if resume:
        if not (folder / CHECKPOINT_NAME).is_file():
            raise ModelError(
                f"{folder}: no {CHECKPOINT_NAME} to resume from; train without --resume"
            )
        return
    check_folder_replaceable(folder, overwrite=overwrite)
    if folder.exists() and any(folder.iterdir()):
        shutil.rmtree(folder)  # a model folder radpipe wrote (checked above)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / OUTPUT_MARKER).write_text("written by radpipe train\n")


def training_progress(
    epochs_done: float, epochs: int, seconds: float, max_minutes: float | None
) -> float:
    """How far through its plan a run is (0 … 1): the share of the epochs done, or of the time
    budget used when that is further along, so that a run stopped by ``max_minutes`` still
    ends its learning-rate decay."""
    share = epochs_done / epochs
    if max_minutes is not None:
        share = max(share, seconds / (60.0 * max_minutes))
    return min(1.0, share)


def poly_factor(progress: float) -> float:
    """nnU-Net's polynomial decay, ``(1 - progress) ** 0.9``, floored at 1 % of the initial
    step size (the epoch that passes the time budget still learns)."""
    return max(0.01, float((1.0 - progress) ** 0.9))


def dice_per_class(
    predicted: NDArray[np.integer], truth: NDArray[np.integer], classes: dict[int, str]
) -> dict[str, float]:
    """Dice of each class (background excluded) over all the voxels given; a class absent from
    both counts as 1."""
    scores = {}
    for value, name in classes.items():
        if value == 0:
            continue
        p, t = predicted == value, truth == value
        total = int(p.sum()) + int(t.sum())
        scores[name] = 1.0 if total == 0 else 2.0 * int((p & t).sum()) / total
    return scores


def train(
    dataset: str | Path,
    folder: str | Path,
    *,
    options: TrainOptions | None = None,
    resume: bool = False,
    overwrite: bool = False,
    on_epoch: Callable[[EpochRecord, int], None] | None = None,
) -> TrainResult:
    """Train a segmentation network on a dataset file and write the model folder.

    ``folder`` receives ``model.pt`` (the weights of the best validation epoch, or the last
    epoch without validation), ``model.json`` (the card), ``checkpoint.pt`` (everything to
    resume), ``metrics.csv`` and ``curves.png``; each is replaced atomically, so a run that
    stops leaves a consistent folder.

    Raises
    ------
    ModelError
        An empty dataset, a dataset without labels, bad options, a folder that cannot be
        replaced or resumed, or a loss that is no longer finite (the last good checkpoint is
        kept).

    Examples
    --------
    >>> from radpipe.models import TrainOptions, train  # doctest: +SKIP
    >>> train("liver.h5", "liver-model", options=TrainOptions(epochs=20))  # doctest: +SKIP
    """
    torch = import_optional("torch", extra="ml")
    losses = import_optional("monai.losses", extra="ml")
    import radpipe

    chosen = options or TrainOptions()
    chosen.check()
    try:
        reader = DatasetReader(dataset)
    except DatasetError as exc:
        raise ModelError(str(exc)) from None
    if len(reader) == 0:
        raise ModelError(
            f"{dataset}: the dataset holds no sample; build it with radpipe dataset build"
        )
    target = Path(folder)
    dimensions = 3 if len(reader.sample_shape) == 3 else 2
    classes = _classes(reader)
    patients = reader.meta["patient"]
    if chosen.val_patients:
        held = np.isin(patients.astype(str), chosen.val_patients)
        if not held.any():
            raise ModelError(f"--val-patients {chosen.val_patients}: none is in {dataset}")
        train_indices, val_indices = np.nonzero(~held)[0], np.nonzero(held)[0]
    else:
        train_indices, val_indices = split_by_patient(
            patients, chosen.val_fraction, seed=chosen.seed
        )
    if train_indices.size == 0:
        raise ModelError(f"{dataset}: every patient is held out; lower --val-fraction")
    patch = chosen.patch_size or _rounded_size(reader.sample_shape, 64 if dimensions == 3 else None)
    multiple = SIZE_MULTIPLE[dimensions]
    if len(patch) != dimensions or any(n % multiple or n < multiple for n in patch):
        raise ModelError(
            f"--patch-size {tuple(patch)}: give {dimensions} extents, each a multiple of {multiple}"
        )
    settings = json.loads(str(reader.attrs.get("preprocessing", "{}")) or "{}")
    normalized = settings.get("normalization", "none") not in (None, "none")
    # a sample of the training data for the intensity fit (8 volumes at most in 3-D: memory)
    most = 64 if dimensions == 2 else 8
    sample_rows = train_indices[:: max(1, -(-train_indices.size // most))][:most]
    sample_images, sample_masks = reader.read(sample_rows)
    intensity = fit_intensity(
        sample_images, sample_masks, dimensions=dimensions, normalized=normalized
    )
    spacing = tuple(float(v) for v in np.median(reader.meta["spacing_mm"][train_indices], axis=0))
    card = ModelCard(
        name=chosen.name or target.name,
        dimensions=dimensions,
        classes=classes,
        in_channels=1,
        spacing_mm=spacing,  # type: ignore[arg-type]
        input_size=tuple(int(n) for n in reader.sample_shape),
        patch_size=tuple(int(n) for n in patch),
        preprocessing={**settings, "intensity": intensity},
        network=default_network(dimensions, in_channels=1, out_channels=max(classes) + 1),
        training={
            "dataset": Path(dataset).name,
            "samples": int(train_indices.size),
            "validation_samples": int(val_indices.size),
            "patients": _pseudonyms(patients[train_indices]),
            "validation_patients": _pseudonyms(patients[val_indices]),
            "batch_size": chosen.batch_size,
            "learning_rate": chosen.learning_rate,
            "augment": chosen.augment,
            "seed": chosen.seed,
            "loss": "monai.losses.DiceCELoss(softmax, one-hot labels, "
            + ("batch Dice)" if chosen.batch_dice else "Dice per window)"),
            "batch_dice": chosen.batch_dice,
            "schedule": "Adam, learning rate x (1 - progress)^0.9 per step, progress over "
            "the epochs or the time budget, whichever is further",
        },
        radpipe_version=radpipe.__version__,
    )
    _prepare_folder(target, resume=resume, overwrite=overwrite)
    device = choose_device(chosen.device)
    torch.manual_seed(chosen.seed)
    network = build_network(card.network).to(device)
    optimizer = torch.optim.Adam(network.parameters(), lr=chosen.learning_rate)
    history: list[EpochRecord] = []
    best = -math.inf  # scores are Dice (validation) or minus the loss (none)
    start_epoch = 0
    resumed_progress = progress = 0.0
    batch_dice = chosen.batch_dice
    if resume:
        try:
            state = torch.load(target / CHECKPOINT_NAME, map_location=device, weights_only=False)
        except (RuntimeError, OSError, EOFError, ValueError, AttributeError) as exc:
            reason = " ".join(str(exc).split())[:160]
            raise ModelError(
                f"{target / CHECKPOINT_NAME}: not a readable checkpoint ({reason}); train anew"
            ) from None
        trained = state.get("card", {})
        if trained.get("classes") and {int(k): v for k, v in trained["classes"].items()} != classes:
            raise ModelError(
                f"{dataset}: its classes {classes} are not the model's {trained['classes']} in "
                f"{target}; resume on the dataset it was trained on, or train a new model"
            )
        if trained.get("network") and trained["network"] != card.network:
            raise ModelError(f"{target}: the checkpoint's network differs; train a new model")
        # the run goes on as it began: same split, intensity mapping, spacing and window
        if trained:
            card.preprocessing = dict(trained["preprocessing"])
            card.spacing_mm = tuple(trained["spacing_mm"])
            card.patch_size = tuple(trained["patch_size"])
            card.training = {**trained.get("training", {}), "resumed_with": {
                "epochs": chosen.epochs, "learning_rate": chosen.learning_rate}}  # fmt: skip
            intensity = card.preprocessing["intensity"]
            patch = card.patch_size
            # and the same loss (cards without the key predate per-window Dice: pooled)
            batch_dice = bool(card.training.get("batch_dice", True))
            kept = sorted(set(card.training.get("validation_patients", [])))
            named = np.array([_pseudonyms(np.array([n]))[0] for n in patients.astype(str)])
            held = np.isin(named, kept)
            train_indices, val_indices = np.nonzero(~held)[0], np.nonzero(held)[0]
        try:
            network.load_state_dict(state["network"])
        except (RuntimeError, KeyError) as exc:
            reason = " ".join(str(exc).split())[:160]
            raise ModelError(
                f"{target}: the checkpoint does not fit the network ({reason})"
            ) from None
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, best = int(state["epoch"]) + 1, float(state["best"])
        if int(state.get("planned_epochs", -1)) == chosen.epochs:
            # the same plan goes on: its decay (perhaps driven by the clock) never climbs back
            resumed_progress = float(state.get("progress", 0.0))
        history = [EpochRecord(**record) for record in state["history"]]
    # Dice per window (default): an apical slice's few pixels of ventricle weigh as much as a
    # basal slice's ring; pooled over the batch they drown (Sunnybrook per-slice mean 0.80 → 0.83)
    loss_function = losses.DiceCELoss(to_onehot_y=True, softmax=True, batch=batch_dice)
    augment = AUGMENTATIONS[chosen.augment]
    if augment is not None and dimensions == 3:
        augment = Augment(flip_horizontal=0.5, flip_vertical=0.5, flip_depth=0.5, rotate=0.3,
                          max_angle=10, max_tilt=5)  # fmt: skip
    whole_samples = tuple(patch) == tuple(reader.sample_shape)
    loader = BatchLoader(
        dataset, batch_size=chosen.batch_size, seed=chosen.seed, indices=train_indices,
        augment=augment, patch_size=None if whole_samples else patch, prefetch=0,
        foreground_fraction=chosen.foreground_fraction, class_balanced=chosen.class_balanced,
        normalize=partial(apply_intensity, intensity=intensity),
    )  # fmt: skip
    started = time.perf_counter()
    stopped = "epochs"
    result = TrainResult(target, card, history, stopped)
    try:
        for epoch in range(start_epoch, chosen.epochs):
            epoch_started = time.perf_counter()
            network.train()
            losses_seen = []
            order = loader.epoch_order(epoch)
            per_batch = loader.batch_size
            for first in range(0, order.size, per_batch):
                progress = max(resumed_progress, training_progress(
                    epoch + first / order.size, chosen.epochs,
                    time.perf_counter() - started, chosen.max_minutes,
                ))  # fmt: skip
                for group in optimizer.param_groups:
                    group["lr"] = chosen.learning_rate * poly_factor(progress)
                batch = loader.load_batch(epoch, order[first : first + per_batch])
                # mapped by the loader on whole samples, before windows are cut (as inference
                # maps the whole slice)
                inputs = torch.from_numpy(batch["image"]).to(device)
                if int(batch["mask"].max()) > max(classes):
                    raise ModelError(
                        f"{dataset}: a mask holds label {int(batch['mask'].max())}, beyond the "
                        f"classes {classes}; rebuild the dataset with one label table (--labels)"
                    )
                labels = torch.from_numpy(batch["mask"].astype(np.int64)).to(device)
                optimizer.zero_grad(set_to_none=True)
                loss = loss_function(network(inputs), labels)
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise ModelError(
                        f"training loss became {value} at epoch {epoch + 1}; stopped, the last "
                        f"good checkpoint (epoch {epoch}) is kept in {target}; lower "
                        "--learning-rate or check the dataset's intensities"
                    )
                loss.backward()
                optimizer.step()
                losses_seen.append(value)
            val_dice = (
                _validate(network, reader, val_indices, card, device) if val_indices.size else {}
            )
            record = EpochRecord(epoch + 1, float(np.mean(losses_seen)), val_dice,
                                 time.perf_counter() - epoch_started)  # fmt: skip
            history.append(record)
            score = record.mean_dice if record.mean_dice is not None else -record.train_loss
            improved = score > best
            if improved:
                best = score
                card.validation = {"epoch": record.epoch, "dice": val_dice,
                                   "mean_dice": record.mean_dice}  # fmt: skip
                card.training["epochs"] = record.epoch
                _save_torch(torch, network.state_dict(), target / WEIGHTS_NAME)
                _write_bytes(target / CARD_NAME, card.to_json().encode())
            _save_torch(torch, {
                "network": network.state_dict(), "optimizer": optimizer.state_dict(),
                "epoch": epoch, "best": best, "card": json.loads(card.to_json()),
                "progress": progress, "planned_epochs": chosen.epochs,
                "history": [record.__dict__ for record in history],
            }, target / CHECKPOINT_NAME)  # fmt: skip
            _write_metrics(target / "metrics.csv", history, classes)
            if on_epoch is not None:
                on_epoch(record, chosen.epochs)
            minutes = (time.perf_counter() - started) / 60
            if chosen.max_minutes is not None and minutes >= chosen.max_minutes:
                stopped = "time"
                break
    finally:
        if history:
            _write_curves(target / "curves.png", history)
    card.postprocessing = _choose_postprocessing(
        chosen, network, reader, val_indices, card, device, target / WEIGHTS_NAME
    )
    if (target / WEIGHTS_NAME).is_file():
        _write_bytes(target / CARD_NAME, card.to_json().encode())
    result.stopped = stopped
    return result


def _validate(
    network: Any, reader: DatasetReader, indices: NDArray[np.int64], card: ModelCard, device: Any
) -> dict[str, float]:
    """Dice per class over all held-out voxels (whole slices, or whole volumes by sliding
    window in 3-D)."""
    predicted, truth = _validation_labels(network, reader, indices, card, device)
    return dice_per_class(predicted, truth, card.classes)


def _validation_labels(
    network: Any, reader: DatasetReader, indices: NDArray[np.int64], card: ModelCard, device: Any
) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """The network's label maps of the held-out samples and their truth, (N, H, W) slices or
    (N, D, H, W) volumes."""
    from radpipe.models.inference import predict_probabilities

    network.eval()
    predicted_parts, truth_parts = [], []
    step = 16 if card.dimensions == 2 else 1
    for first in range(0, indices.size, step):
        chunk = indices[first : first + step]
        images, masks = reader.read(chunk)
        if card.dimensions == 2:  # a stack of slices, one forward pass per group
            probabilities = predict_probabilities(network, images, card, device)
            predicted_parts.append(probabilities.argmax(axis=0).astype(np.uint8))
            truth_parts.append(masks)
            continue
        for image, mask in zip(images, masks, strict=True):
            probabilities = predict_probabilities(network, image, card, device)
            predicted_parts.append(probabilities.argmax(axis=0).astype(np.uint8)[None])
            truth_parts.append(mask[None])
    return np.concatenate(predicted_parts), np.concatenate(truth_parts)


def _choose_postprocessing(
    chosen: TrainOptions, network: Any, reader: DatasetReader, indices: NDArray[np.int64],
    card: ModelCard, device: Any, weights: Path,
) -> dict[str, Any]:  # fmt: skip
    """The card's ``postprocessing`` entry: every class (``largest``), none, or (``auto``) the
    classes whose held-out Dice the largest-component rule raises, with the figures."""
    foreground = [v for v in card.classes if v != 0]
    if chosen.postprocess == "none":
        return {}
    # a 2-D model's samples are unrelated slices: the rule is chosen, and applied, per slice
    per_slice = card.dimensions == 2
    if chosen.postprocess == "largest":
        return {"largest_component": foreground, "per_slice": per_slice,
                "chosen_by": "--postprocess largest"}  # fmt: skip
    if chosen.postprocess == "convex":
        return {"largest_component": foreground, "convex_hull": foreground,
                "per_slice": per_slice, "chosen_by": "--postprocess convex"}  # fmt: skip
    if indices.size == 0:
        return {}  # nothing to decide on: the label map stays as the network gives it
    torch = import_optional("torch", extra="ml")
    from radpipe.models.postprocess import choose_largest_component

    network.load_state_dict(torch.load(weights, map_location=device, weights_only=True))
    predicted, truth = _validation_labels(network, reader, indices, card, device)
    classes, figures = choose_largest_component(predicted, truth, card.classes, per_slice=per_slice)
    return {"largest_component": classes, "per_slice": per_slice, "chosen_by": "validation Dice",
            "validation": figures}  # fmt: skip
