"""3-D datasets feed batches (whole volumes, foreground-weighted patches), 3-D paired
augmentation, per-epoch augmentation in the PyTorch and Keras adapters, loaders that end."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from radpipe.cli.main import main
from radpipe.dataset.augment import Augment
from radpipe.dataset.loader import BatchLoader
from radpipe.dataset.patches import cut_pair, patch_start
from radpipe.dataset.schema import DatasetReader
from radpipe.errors import DatasetError
from radpipe.phantom import write_ircadb_patient


@pytest.fixture(scope="module")
def volumes(tmp_path_factory):
    """A 3-D dataset of two phantom patients built by ``radpipe dataset build --mode 3d``."""
    root = tmp_path_factory.mktemp("volumes")
    for number in (1, 2):
        write_ircadb_patient(
            root / "tree" / f"3Dircadb1.{number}", patient_id=f"V-{number}", shape=(20, 48, 56),
            spacing=(2.5, 3.0, 3.0), tumours=1, seed=number, zipped=False,
        )  # fmt: skip
    path = root / "vol.h5"
    code = main(["dataset", "build", str(root / "tree"), "-o", str(path), "--mode", "3d",
                 "--size", "20,48,56", "--labels", "liver=1,livertumor=2",
                 "--workers", "1"])  # fmt: skip
    assert code == 0
    return path


def test_whole_volumes_and_patches_feed_batches(volumes):
    reader = DatasetReader(volumes)
    assert reader.sample_shape == (20, 48, 56) and len(reader) == 2
    images, masks = reader.read([0, 1])
    batch = next(iter(BatchLoader(volumes, batch_size=2, shuffle=False, epochs=1)))
    assert batch["image"].shape == (2, 1, 20, 48, 56) and batch["mask"].dtype == np.uint8
    np.testing.assert_array_equal(batch["image"][:, 0], images)
    np.testing.assert_array_equal(batch["mask"][:, 0], masks)
    with BatchLoader(
        volumes, batch_size=4, patch_size=(8, 16, 16), patches_per_sample=2,
        foreground_fraction=1.0, epochs=1, seed=3,
    ) as loader:  # fmt: skip
        batches = list(loader)
    assert [b["image"].shape for b in batches] == [(4, 1, 8, 16, 16)]
    patches = batches[0]
    assert patches["index"].tolist() in ([0, 0, 1, 1], [1, 1, 0, 0])
    # foreground-centred: the centre voxel of every patch is labelled
    assert (patches["mask"][:, 0, 4, 8, 8] > 0).all()
    # each patch is the very voxels of its volume: find it back by brute force
    for item in range(4):
        volume = images[patches["index"][item]]
        patch = patches["image"][item, 0]
        hits = [
            (k, j, i)
            for k in range(20 - 7) for j in range(48 - 15) for i in range(56 - 15)
            if volume[k, j, i] == patch[0, 0, 0]
            and np.array_equal(volume[k:k + 8, j:j + 16, i:i + 16], patch)
        ]  # fmt: skip
        assert hits, "the patch is not a window of its volume"


def test_foreground_fraction_is_honoured():
    mask = np.zeros((30, 40, 40), np.uint8)
    mask[10:14, 10:14, 10:14] = 1  # 64 of 48,000 voxels
    rng = np.random.default_rng(0)
    centres = []
    for _ in range(400):
        start = patch_start(mask, (6, 8, 8), rng, foreground_fraction=0.3)
        centres.append(mask[start[0] + 3, start[1] + 4, start[2] + 4])
    share = float(np.mean(centres))
    assert 0.22 < share < 0.38  # 0.3 ± 3.5 binomial standard errors
    # a sample smaller than its patch is padded around it
    image = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3) + 5
    patch, labels, start = cut_pair(image, np.ones((2, 3, 3), np.uint8), (4, 5, 5), rng)
    assert start == (-1, -1, -1) and patch.shape == (4, 5, 5)
    np.testing.assert_array_equal(patch[1:3, 1:4, 1:4], image)
    assert patch[0].min() == 5 and int(labels.sum()) == 18
    with pytest.raises(DatasetError, match="patch size"):
        cut_pair(image, labels[:2, :3, :3], (4, 5), rng)


def test_3d_augmentation_moves_mask_with_image():
    shape = (16, 24, 28)
    k, j, i = np.indices(shape)
    mask = np.zeros(shape, np.uint8)
    mask[3:9, 5:12, 14:24] = 1
    coded = (k * 10_000 + j * 100 + i).astype(np.float32)
    flips = Augment(flip_horizontal=0.5, flip_vertical=0.5, flip_depth=0.5, rotate90=0.5)
    seen = set()
    for seed in range(16):
        out_image, out_mask = flips(coded, mask, np.random.default_rng(seed))
        values = out_image[out_mask == 1].astype(int)
        assert (mask[values // 10_000, values // 100 % 100, values % 100] == 1).all()
        assert out_mask.sum() == mask.sum()
        seen.add(out_image.tobytes()[:64])
    assert len(seen) > 4  # the draws differ
    smooth = Augment(flip_horizontal=0, rotate=1.0, max_angle=20, max_tilt=8, crop_zoom=1.0)
    for seed in range(6):
        moved = [
            smooth(axis.astype(np.float32), mask, np.random.default_rng(seed)) for axis in (k, j, i)
        ]
        out_mask = moved[0][1]
        for _, other in moved[1:]:
            np.testing.assert_array_equal(other, out_mask)
        inside = out_mask == 1
        assert inside.any()
        source = [
            np.clip(np.rint(m[0][inside]).astype(int), 0, n - 1)
            for m, n in zip(moved, shape, strict=True)
        ]
        assert mask[tuple(source)].mean() > 0.9  # only voxels on the edge may disagree


def test_torch_dataset_changes_augmentation_every_epoch(volumes):
    torch = pytest.importorskip("torch")
    from radpipe.dataset.torch import EpochDataLoader, TorchDataset

    dataset = TorchDataset(volumes, augment=Augment.standard_3d(), patch_size=(8, 16, 16), seed=1)
    loader = dataset.loader(batch_size=2, num_workers=2, shuffle=False)
    epochs = [torch.cat([b["image"] for b in loader]) for _ in range(3)]
    assert epochs[0].shape == (2, 1, 8, 16, 16)
    assert not torch.equal(epochs[0], epochs[1]) and not torch.equal(epochs[1], epochs[2])
    assert [int(b["epoch"][0]) for b in loader] == [3]
    # reproducible: a new loader replays the same epochs
    again = TorchDataset(volumes, augment=Augment.standard_3d(), patch_size=(8, 16, 16), seed=1)
    replay_loader = again.loader(batch_size=2)  # in-process this time
    replay = [torch.cat([b["image"] for b in replay_loader]) for _ in range(2)]
    assert torch.equal(replay[0], epochs[0]) and torch.equal(replay[1], epochs[1])
    with pytest.raises(DatasetError, match="persistent_workers"):
        EpochDataLoader(dataset, num_workers=1, persistent_workers=True)


def test_keras_pydataset_fits_a_model_and_changes_per_epoch(volumes, tmp_path):
    """A real ``model.fit`` of a tiny 3-D network on the torch backend, in its own process."""
    pytest.importorskip("radpipe.dataset.keras")  # chooses an installed backend
    script = f"""
import numpy as np
from radpipe.dataset.loader import BatchLoader
from radpipe.dataset.augment import Augment
import radpipe.dataset.keras  # chooses the installed backend when KERAS_BACKEND is unset
import keras
loader = BatchLoader({str(volumes)!r}, batch_size=2, patch_size=(8, 16, 16), patches_per_sample=2,
                     augment=Augment.standard_3d(), seed=0)
data = loader.keras()
assert isinstance(data, keras.utils.PyDataset) and len(data) == 2
x0, _ = data[0]
data.on_epoch_end()
x1, _ = data[0]
assert x0.shape == (2, 8, 16, 16, 1) and not np.array_equal(x0, x1)
inputs = keras.Input((8, 16, 16, 1))
outputs = keras.layers.Conv3D(3, 3, padding="same", activation="softmax")(inputs)
model = keras.Model(inputs, outputs)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
history = model.fit(data, epochs=2, verbose=0)
assert len(history.history["loss"]) == 2 and np.isfinite(history.history["loss"]).all()
print("fitted", keras.backend.backend())
"""
    import os

    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False,
        env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "fitted torch" in result.stdout


def test_a_3d_patch_script_exits(volumes):
    code = (
        "import sys, time\nfrom radpipe.dataset.loader import BatchLoader\n"
        "loader = BatchLoader(sys.argv[1], batch_size=2, patch_size=(8, 16, 16))\n"
        "for batch in loader:\n    break\nprint('ok', batch['image'].shape, time.time())"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(volumes)], capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    ended = time.time()
    assert result.returncode == 0 and "ok (2, 1, 8, 16, 16)" in result.stdout, result.stderr
    assert ended - float(result.stdout.split()[-1]) < 3  # gone within seconds of its last line


def test_class_balanced_centres_draw_each_label_alike(volumes):
    """On a phantom volume whose tumour is a small share of the labelled voxels, any-label
    centring lands on it about as often as its share; class-balanced centring half the time
    (two labels); the loader passes the choice through."""
    _, masks = DatasetReader(volumes).read([0])
    mask = masks[0]
    share = (mask == 2).sum() / (mask > 0).sum()
    assert 0 < share < 0.15
    draws = 600

    def tumour_centres(balanced: bool) -> float:
        rng = np.random.default_rng(5)
        hits = 0
        for _ in range(draws):  # a one-voxel patch starts at its centre
            start = patch_start(mask, (1, 1, 1), rng, foreground_fraction=1.0,
                                class_balanced=balanced)  # fmt: skip
            hits += int(mask[start] == 2)
            assert mask[start] > 0
        return hits / draws

    assert tumour_centres(False) < share + 0.06
    assert 0.42 < tumour_centres(True) < 0.58
    with BatchLoader(volumes, batch_size=2, patch_size=(1, 1, 1), patches_per_sample=2,
                     foreground_fraction=1.0, class_balanced=True, epochs=60, seed=1,
                     shuffle=False, indices=[0]) as loader:  # fmt: skip
        labels = np.concatenate([b["mask"].reshape(-1) for b in loader])
    assert labels.min() > 0 and 0.35 < (labels == 2).mean() < 0.65
