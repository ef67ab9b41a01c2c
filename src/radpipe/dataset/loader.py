"""Shuffled, reproducible batches of 2-D slices, 3-D volumes or random 3-D patches from a
dataset file, with paired augmentation and a background prefetch thread; a split by patient."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from radpipe.dataset.augment import Augment
from radpipe.dataset.patches import check_patch_size, cut_context_pair, cut_pair
from radpipe.dataset.schema import DatasetReader
from radpipe.errors import DatasetError


def split_by_patient(
    patients: NDArray[Any], val_fraction: float, *, seed: int = 0
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Train and validation sample indices with every patient wholly on one side."""
    if not 0.0 <= val_fraction < 1.0:
        raise DatasetError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    names = np.unique(patients)
    rng = np.random.default_rng(seed)
    shuffled = names[rng.permutation(len(names))]
    count = round(len(names) * val_fraction)
    if val_fraction > 0 and count == 0 and len(names) > 1:
        count = 1
    held = set(shuffled[:count].tolist())
    is_val = np.array([p in held for p in patients])
    return np.nonzero(~is_val)[0], np.nonzero(is_val)[0]


class BatchLoader:
    """Dict batches ``image`` (B, 1, H, W) or (B, 1, D, H, W) float32, ``mask`` of the same
    shape uint8, ``meta``, ``index`` (the sample of each item), ``epoch``.

    Parameters
    ----------
    path : dataset file written by ``radpipe dataset build`` (2-D or 3-D)
    batch_size : int
        Items per batch (slices, volumes or patches).
    patch_size : sequence of int, optional
        Random patches of this size instead of whole samples ((D, H, W) for a 3-D dataset),
        centred on a labelled voxel with probability ``foreground_fraction`` and on a background
        voxel otherwise, as MONAI's ``RandCropByPosNegLabeld``; samples smaller than the patch
        are padded.
    foreground_fraction : float
    class_balanced : bool
        A labelled centre is a voxel of one of the sample's labels drawn with equal chances
        (small classes centred as often as large ones), not any labelled voxel.
    patches_per_sample : int
        Patches drawn from each sample read (a batch holds ``batch_size / patches_per_sample``
        samples; it must divide ``batch_size``).
    shuffle : bool
        A new permutation each epoch, reproducible from ``seed``.
    seed : int
    epochs : int, optional
        Stop after this many epochs (endless when None).
    augment : Augment, optional
        Applied to every sample with a generator derived from (seed, epoch, index). With a
        ``patch_size`` on 2-D samples, rotations and zooms read the anatomy around the patch
        (a window of :meth:`Augment.context_shape`, padded with the sample's minimum beyond its
        edge), as at inference where the whole slice is seen.
    normalize : callable, optional
        Intensity mapping applied to each whole sample before any patch is cut or augmentation
        drawn (a per-slice z-score then has the statistics of the slice the model will see at
        inference, not of a window).
    indices : sample indices to draw from (e.g. the train side of :func:`split_by_patient`)
    prefetch : int
        Batches read ahead by a background thread (0 reads in the caller's thread).
    drop_last : bool
        Skip a final partial batch.

    Examples
    --------
    >>> for batch in BatchLoader("train.h5", batch_size=16, epochs=1):  # doctest: +SKIP
    ...     logits = model(batch["image"])
    """

    def __init__(
        self,
        path: str | Path,
        *,
        batch_size: int = 16,
        shuffle: bool = True,
        seed: int = 0,
        epochs: int | None = None,
        augment: Augment | None = None,
        indices: NDArray[np.integer] | None = None,
        prefetch: int = 2,
        drop_last: bool = False,
        patch_size: tuple[int, ...] | list[int] | None = None,
        foreground_fraction: float = 0.5,
        patches_per_sample: int = 1,
        class_balanced: bool = False,
        normalize: Callable[[NDArray[np.float32]], NDArray[np.float32]] | None = None,
    ) -> None:
        if batch_size < 1:
            raise DatasetError(f"batch size must be at least 1, got {batch_size}")
        self.reader = DatasetReader(path)
        if len(self.reader.sample_shape) not in (2, 3):
            raise DatasetError(
                f"{path}: holds no samples (shape {self.reader.sample_shape}); rebuild it"
            )
        self.patch_size = (
            None if patch_size is None else check_patch_size(patch_size, self.reader.sample_shape)
        )
        if not 0.0 <= foreground_fraction <= 1.0:
            raise DatasetError(f"foreground fraction must be in [0, 1], got {foreground_fraction}")
        if patches_per_sample < 1 or batch_size % patches_per_sample:
            raise DatasetError(
                f"patches per sample ({patches_per_sample}) must be at least 1 and divide the "
                f"batch size ({batch_size})"
            )
        if patches_per_sample > 1 and self.patch_size is None:
            raise DatasetError("patches per sample needs a patch size")
        self.foreground_fraction = foreground_fraction
        self.class_balanced = class_balanced
        self.patches_per_sample = patches_per_sample
        self.indices = (
            np.arange(len(self.reader)) if indices is None else np.asarray(indices, dtype=np.int64)
        )
        if self.indices.size == 0:
            raise DatasetError(f"{path}: no samples to load")
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.epochs = epochs
        self.augment = augment
        self.prefetch = prefetch
        self.drop_last = drop_last
        self.normalize = normalize

    def epoch_order(self, epoch: int) -> NDArray[np.int64]:
        """The sample order of one epoch."""
        if not self.shuffle:
            return self.indices.copy()
        rng = np.random.default_rng([self.seed, epoch])
        return self.indices[rng.permutation(self.indices.size)]

    def _pool(self) -> Any:
        from concurrent.futures import ThreadPoolExecutor

        if getattr(self, "_executor", None) is None:
            from radpipe.parallel import default_workers

            workers = max(1, default_workers())
            self._executor = ThreadPoolExecutor(workers, thread_name_prefix="radpipe-augment")
        return self._executor

    @property
    def item_shape(self) -> tuple[int, ...]:
        """The spatial shape of each batch item (patch or whole sample)."""
        return self.patch_size or tuple(self.reader.sample_shape)

    def batches_per_epoch(self) -> int:
        """How many batches one epoch yields."""
        per_batch = self.batch_size // self.patches_per_sample
        count = self.indices.size // per_batch
        return count if self.drop_last or self.indices.size % per_batch == 0 else count + 1

    def batch_indices(self) -> Iterator[tuple[int, NDArray[np.int64]]]:
        """(epoch, sample indices) of every batch, without reading anything."""
        per_batch = self.batch_size // self.patches_per_sample
        epoch = 0
        while self.epochs is None or epoch < self.epochs:
            order = self.epoch_order(epoch)
            for start in range(0, order.size, per_batch):
                chunk = order[start : start + per_batch]
                if self.drop_last and chunk.size < per_batch:
                    break
                yield epoch, chunk
            epoch += 1

    def load_batch(self, epoch: int, chunk: NDArray[np.int64]) -> dict[str, Any]:
        """The batch of these samples in this epoch (the same every time it is asked for)."""
        images, masks = self.reader.read(chunk)  # one direct chunk read per sample
        images = images.astype(np.float32, copy=False)
        if self.normalize is not None:
            images = np.stack([self.normalize(image) for image in images]).astype(
                np.float32, copy=False
            )
        repeat = self.patches_per_sample
        if self.augment is None and self.patch_size is None:
            return self._batch(images, masks, chunk, epoch)
        count = len(chunk) * repeat
        out_images = np.empty((count, *self.item_shape), np.float32)
        out_masks = np.empty((count, *self.item_shape), np.uint8)
        augment, patch_size = self.augment, self.patch_size
        # 2-D windows are cut with the anatomy around them, so rotations and zooms read real
        # neighbouring tissue instead of padding
        context = (
            augment.context_shape(patch_size)
            if augment is not None and patch_size is not None and len(patch_size) == 2
            else None
        )

        def one(position: int) -> None:
            sample, draw = divmod(position, repeat)
            rng = np.random.default_rng([self.seed, epoch, int(chunk[sample]), draw])
            image, mask = images[sample], masks[sample]
            if augment is not None and patch_size is not None and context is not None:
                image, mask = cut_context_pair(
                    image, mask, patch_size, context, rng,
                    foreground_fraction=self.foreground_fraction,
                    class_balanced=self.class_balanced,
                )  # fmt: skip
                image, mask = augment(image, mask, rng, output_shape=patch_size)
            else:
                if patch_size is not None:
                    image, mask, _ = cut_pair(
                        image, mask, patch_size, rng, foreground_fraction=self.foreground_fraction,
                        class_balanced=self.class_balanced,
                    )  # fmt: skip
                if augment is not None:
                    image, mask = augment(image, mask, rng)
            out_images[position], out_masks[position] = image, mask

        # NumPy and scipy release the GIL in the warps: the batch is spread over the cores
        list(self._pool().map(one, range(count)))
        return self._batch(out_images, out_masks, np.repeat(chunk, repeat), epoch)

    def _batch(
        self, images: NDArray[Any], masks: NDArray[Any], chunk: NDArray[np.int64], epoch: int
    ) -> dict[str, Any]:
        return {
            "image": images[:, None],
            "mask": masks[:, None],
            "meta": self.reader.meta[chunk],
            "index": chunk,
            "epoch": epoch,
        }

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if self.prefetch <= 0:
            for epoch, chunk in self.batch_indices():
                yield self.load_batch(epoch, chunk)
            return
        pending: queue.Queue[Any] = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()
        done = object()

        def hand_over(item: Any) -> bool:
            """Put ``item`` in the queue unless the consumer has stopped (never blocks for
            good: a loader whose consumer is gone must not keep the process alive)."""
            while not stop.is_set():
                try:
                    pending.put(item, timeout=0.05)
                    return True
                except queue.Full:
                    continue
            return False

        def produce() -> None:
            try:
                for epoch, chunk in self.batch_indices():
                    if stop.is_set() or not hand_over(self.load_batch(epoch, chunk)):
                        return
                hand_over(done)
            except BaseException as exc:  # handed to the consumer, raised there
                hand_over(exc)

        worker = threading.Thread(target=produce, daemon=True, name="radpipe-prefetch")
        worker.start()
        try:
            while True:
                item = pending.get()
                if item is done:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:  # the consumer stopped (break, close, garbage collection at exit)
            stop.set()
            while not pending.empty():
                pending.get_nowait()
            worker.join(timeout=5)
            self.close()

    def close(self) -> None:
        """Stop the augmentation threads (iterating again starts them anew)."""
        executor = getattr(self, "_executor", None)
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
            del self._executor

    def __enter__(self) -> BatchLoader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def keras(self, **options: Any) -> Any:
        """This loader as a ``keras.utils.PyDataset`` (Keras 3: ``model.fit(loader.keras())``),
        channels-last; ``options`` go to PyDataset (``workers``, ``use_multiprocessing``)."""
        from radpipe.dataset.keras import KerasDataset

        return KerasDataset(self, **options)
