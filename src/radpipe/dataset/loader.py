"""Shuffled, reproducible batches from a dataset file with paired augmentation and a background
prefetch thread; a split by patient; an endless generator for Keras."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from radpipe.dataset.augment import Augment
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
    """Dict batches ``image`` (B, 1, H, W) float32, ``mask`` (B, 1, H, W) uint8, ``meta``.

    Parameters
    ----------
    path : dataset file written by ``radpipe dataset build``
    batch_size : int
    shuffle : bool
        A new permutation each epoch, reproducible from ``seed``.
    seed : int
    epochs : int, optional
        Stop after this many epochs (endless when None).
    augment : Augment, optional
        Applied to every sample with a generator derived from (seed, epoch, index).
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
    ) -> None:
        if batch_size < 1:
            raise DatasetError(f"batch size must be at least 1, got {batch_size}")
        self.reader = DatasetReader(path)
        if len(self.reader.sample_shape) != 2:
            raise DatasetError(
                f"{path}: BatchLoader reads 2-D datasets; this one holds {self.reader.sample_shape}"
            )
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

    def batch_indices(self) -> Iterator[tuple[int, NDArray[np.int64]]]:
        """(epoch, indices) of every batch, without reading anything."""
        epoch = 0
        while self.epochs is None or epoch < self.epochs:
            order = self.epoch_order(epoch)
            for start in range(0, order.size, self.batch_size):
                chunk = order[start : start + self.batch_size]
                if self.drop_last and chunk.size < self.batch_size:
                    break
                yield epoch, chunk
            epoch += 1

    def _load(self, epoch: int, chunk: NDArray[np.int64]) -> dict[str, Any]:
        images, masks = self.reader.read(chunk)  # one direct chunk read per sample
        images = images.astype(np.float32, copy=False)
        if self.augment is not None:
            out_images = np.empty_like(images)
            out_masks = np.empty_like(masks)
            augment = self.augment

            def one(position: int) -> None:
                rng = np.random.default_rng([self.seed, epoch, int(chunk[position])])
                pair = augment(images[position], masks[position], rng)
                out_images[position], out_masks[position] = pair

            # NumPy releases the GIL in the warps: the batch is spread over the cores
            list(self._pool().map(one, range(len(chunk))))
            images, masks = out_images, out_masks
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
                yield self._load(epoch, chunk)
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
                    if stop.is_set() or not hand_over(self._load(epoch, chunk)):
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

    def keras(self) -> Iterator[tuple[NDArray[np.float32], NDArray[np.uint8]]]:
        """Endless (images, masks) in channels-last layout, as Keras ``fit`` expects."""
        endless = BatchLoader.__new__(BatchLoader)
        endless.__dict__.update(self.__dict__)
        endless.epochs = None
        for batch in endless:
            yield batch["image"].transpose(0, 2, 3, 1), batch["mask"].transpose(0, 2, 3, 1)
