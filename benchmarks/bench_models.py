"""Segmentation models: speed against a plain MONAI script doing the same work, and the
quality targets on real and phantom data.

- ``speed``: training samples/s (2-D U-Net, 256×256 slices, batch 8, flips / rotation /
  crop-zoom) — ``radpipe.models.train`` against MONAI ``CacheDataset`` + ``DataLoader`` with
  the same network, loss and augmentations; inference of a 512×512×300 CT NIfTI to a label
  NIfTI — ``radpipe segment`` against MONAI ``LoadImage`` + ``sliding_window_inference`` +
  nibabel, the same weights.
- ``sunnybrook``: LV blood pool (i-contours), each Sunnybrook patient held out in turn
  (``--folds``) and the model trained on the others' files only (CPU ≤ 10 minutes); Dice over
  the held-out patient's manually contoured slices (the patient's Dice, and the mean of the
  per-slice Dice), for the network's argmax and with one blood pool per slice (target ≥ 0.85).
- ``phantom``: trained on three phantom patients, the fourth segmented, in one pass and with
  test-time mirroring: tumour Dice (target ≥ 0.9) and each predicted tumour's volume against
  the phantom's truth (target within 5 %).

    .venv/bin/python benchmarks/bench_models.py [speed] [sunnybrook] [phantom] [--device cpu]
        [--folds 3] [--minutes 9] [--phantom-epochs 320]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _torch_threads() -> None:
    import torch

    from radpipe.parallel import default_workers

    torch.set_num_threads(max(1, default_workers()))


def training_speed(work: Path, device: str) -> None:
    import torch
    from monai import transforms as mt
    from monai.data import CacheDataset, DataLoader
    from monai.losses import DiceCELoss

    from radpipe.dataset.schema import DatasetReader, DatasetWriter, Sample
    from radpipe.models import TrainOptions, train
    from radpipe.models.networks import build_network, default_network

    path = work / "speed.h5"
    rng = np.random.default_rng(0)
    writer = DatasetWriter(path, mode="2d", preprocessing={}, label_names={1: "organ"})
    yy, xx = np.indices((256, 256))
    samples = []
    for k in range(128):
        centre = rng.uniform(80, 176, 2)
        mask = ((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 < 30**2).astype(np.uint8)
        image = (rng.normal(0, 1, (256, 256)) + 2 * mask).astype(np.float32)
        samples.append(Sample(image, mask, f"anon-{k // 32}", "s", k, (0, 0, k), (1, 1, 1), True))
    writer.write(samples)
    writer.close()
    epochs = 3
    options = TrainOptions(epochs=epochs, batch_size=8, val_fraction=0.0, device=device)
    result = train(path, work / "speed-model", options=options)
    seconds = sorted(r.seconds for r in result.history)[len(result.history) // 2]
    ours = 128 / seconds

    reader = DatasetReader(path)
    images, masks = reader.read(np.arange(len(reader)))
    items = [{"image": images[n][None], "label": masks[n][None]} for n in range(len(reader))]
    keys = ["image", "label"]
    steps = mt.Compose([
        mt.EnsureTyped(keys=keys, track_meta=False),
        mt.NormalizeIntensityd(keys="image"),
        mt.RandFlipd(keys, prob=0.5, spatial_axis=0), mt.RandFlipd(keys, prob=0.5, spatial_axis=1),
        mt.RandRotate90d(keys, prob=0.5),
        mt.RandRotated(keys, range_x=np.radians(30), prob=0.5, mode=("bilinear", "nearest")),
        mt.RandZoomd(keys, prob=0.5, min_zoom=1.0, max_zoom=1.33, mode=("bilinear", "nearest")),
    ])  # fmt: skip
    loader = DataLoader(CacheDataset(items, transform=steps, progress=False), batch_size=8,
                        shuffle=True, num_workers=2)  # fmt: skip
    chosen = torch.device(device if device != "auto" else "cpu")
    network = build_network(default_network(2, in_channels=1, out_channels=2)).to(chosen)
    optimizer = torch.optim.Adam(network.parameters(), lr=2e-3)
    loss_function = DiceCELoss(to_onehot_y=True, softmax=True)
    times = []
    for _ in range(epochs):
        started = time.perf_counter()
        network.train()
        for batch in loader:
            optimizer.zero_grad(set_to_none=True)
            loss = loss_function(network(batch["image"].to(chosen)),
                                 batch["label"].long().to(chosen))  # fmt: skip
            loss.backward()
            optimizer.step()
        times.append(time.perf_counter() - started)
    peer = 128 / sorted(times)[len(times) // 2]
    print(f"\ntraining, 2-D U-Net, 256×256, batch 8, augmented ({device}), median epoch")
    print(f"  radpipe train                 {ours:7.1f} samples/s")
    print(f"  MONAI CacheDataset script     {peer:7.1f} samples/s   radpipe {ours / peer:.2f}x "
          "(target >= 1x)")  # fmt: skip


def inference_speed(work: Path, device: str) -> None:
    import nibabel as nib
    import torch
    from monai.inferers import sliding_window_inference
    from monai.transforms import LoadImage

    from radpipe.export.segmentation import segment_to_files
    from radpipe.io import save
    from radpipe.models.card import CARD_NAME, WEIGHTS_NAME, ModelCard
    from radpipe.models.networks import build_network, default_network
    from radpipe.phantom import make_phantom

    phantom = make_phantom(shape=(300, 512, 512), spacing=(1.0, 0.8, 0.8), tumours=4, seed=3)
    ct = save(phantom.ct, work / "ct.nii.gz", overwrite=True)
    del phantom
    model = work / "ct-model"
    model.mkdir()
    network_entry = default_network(2, in_channels=1, out_channels=4)
    card = ModelCard(
        name="bench", dimensions=2, classes={0: "background", 1: "liver", 2: "spleen", 3: "tumor"},
        in_channels=1, spacing_mm=(1.0, 0.8, 0.8), input_size=(512, 512), patch_size=(512, 512),
        preprocessing={"intensity": {"mode": "slice_zscore"}}, network=network_entry,
    )  # fmt: skip
    (model / CARD_NAME).write_text(card.to_json())
    torch.manual_seed(0)
    network = build_network(network_entry)
    torch.save(network.state_dict(), model / WEIGHTS_NAME)

    started = time.perf_counter()
    segment_to_files(ct, work / "ours.nii.gz", model=model, device=device, overwrite=True)
    ours = time.perf_counter() - started

    chosen = torch.device(device if device != "auto" else "cpu")
    started = time.perf_counter()
    network = build_network(network_entry)
    network.load_state_dict(
        torch.load(model / WEIGHTS_NAME, map_location=chosen, weights_only=True)
    )
    network.to(chosen).eval()
    volume = LoadImage(image_only=True)(str(ct))  # (x, y, z) as nibabel reads it
    slices = volume.permute(2, 1, 0)[:, None].float()  # (z, y, x): the slices radpipe sees
    mean = slices.mean(dim=(2, 3), keepdim=True)
    std = slices.std(dim=(2, 3), keepdim=True, unbiased=False).clamp_min(1e-6)
    labels = []
    with torch.inference_mode():
        for first in range(0, slices.shape[0], 16):
            group = (slices[first : first + 16] - mean[first : first + 16]) / std[
                first : first + 16
            ]
            logits = sliding_window_inference(
                group.to(chosen), roi_size=(512, 512), sw_batch_size=16, predictor=network,
                overlap=0.25, mode="gaussian",
            )  # fmt: skip
            labels.append(torch.softmax(logits, 1).argmax(1).to(torch.uint8).cpu())
    array = torch.cat(labels).permute(2, 1, 0).numpy()
    nib.save(nib.Nifti1Image(array, nib.load(str(ct)).affine), str(work / "peer.nii.gz"))
    peer = time.perf_counter() - started
    ours_labels = np.asarray(nib.load(str(work / "ours.nii.gz")).dataobj)
    same = float((ours_labels == array).mean()) if ours_labels.shape == array.shape else 0.0
    print(f"\ninference, 512×512×300 CT NIfTI → label NIfTI, 2-D U-Net ({device})")
    print(f"  radpipe segment               {ours:7.1f} s")
    print(f"  MONAI LoadImage + sliding win {peer:7.1f} s   radpipe/peer {ours / peer:.2f}x "
          f"(target <= 1x); same label in {same:.2%} of voxels")  # fmt: skip


def _training_tree(source: Path, target: Path, held: str) -> Path:
    """The Sunnybrook folder without one patient (links to its files): what a user trains on."""
    import csv

    (target / "dicoms").mkdir(parents=True)
    (target / "contourfiles").mkdir()
    with open(source / "link.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["patient_id"] != held]
    for row in rows:
        (target / "dicoms" / row["patient_id"]).symlink_to(source / "dicoms" / row["patient_id"])
        (target / "contourfiles" / row["original_id"]).symlink_to(
            source / "contourfiles" / row["original_id"]
        )
    with open(target / "link.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["patient_id", "original_id"])
        writer.writeheader()
        writer.writerows(rows)
    return target


def sunnybrook(work: Path, device: str, folds: int = 3, minutes: float = 9.0) -> None:
    import csv

    from radpipe.cli.main import main
    from radpipe.dataset.schema import DatasetReader
    from radpipe.models import TrainOptions, train
    from radpipe.models.inference import load_model, predict_probabilities
    from radpipe.models.postprocess import fill_convex_hull, keep_largest_per_slice
    from radpipe.privacy import pseudonym

    source = DATA / "sunnybrook"
    everyone = work / "lv.h5"
    assert main(["dataset", "build", "--data-directory", str(source), "-o", str(everyone),
                 "--labels", "endocardium=1"]) == 0  # fmt: skip
    reader = DatasetReader(everyone)
    with open(source / "link.csv", newline="") as handle:
        patients = [row["patient_id"] for row in csv.DictReader(handle)]
    results = []
    for held in patients[:folds]:
        # trained on the other patients' files only: nothing of the held-out patient is seen,
        # neither for model selection nor for the post-processing choice
        tree = _training_tree(source, work / f"tree-{held}", held)
        dataset = work / f"train-{held}.h5"
        assert main(["dataset", "build", "--data-directory", str(tree), "-o", str(dataset),
                     "--labels", "endocardium=1"]) == 0  # fmt: skip
        started = time.perf_counter()
        folder = work / f"lv-{held}"
        # 128×128 windows (a third centred on the ventricle) of the 256×256 slices; any
        # rotation and 0.7–1.4× zoom: cine short-axis stacks differ in orientation and field
        # of view between patients; one blood pool per slice (--postprocess largest)
        options = TrainOptions(epochs=2000, max_minutes=minutes, batch_size=8, val_fraction=0.0,
                               device=device, augment="strong", patch_size=(128, 128),
                               postprocess="largest")  # fmt: skip
        result = train(dataset, folder, options=options)
        trained = (time.perf_counter() - started) / 60
        model = load_model(folder, device=device)
        rows = np.nonzero(reader.meta["patient"].astype(str) == pseudonym(held))[0]
        images, masks = reader.read(rows)
        truth = masks == 1
        raw = predict_probabilities(model.network, images, model.card, model.device).argmax(0)
        mirrored = predict_probabilities(
            model.network, images, model.card, model.device, mirror=True
        ).argmax(0)
        for name, labels in (
            ("network", raw),
            ("largest part", keep_largest_per_slice(raw, [1])),
            ("--mirror, largest part", keep_largest_per_slice(mirrored, [1])),
            ("largest part + convex hull", fill_convex_hull(keep_largest_per_slice(raw, [1]), [1])),
            (
                "--mirror, largest + hull",
                fill_convex_hull(keep_largest_per_slice(mirrored, [1]), [1]),
            ),
        ):
            guess = labels == 1
            slices = [2 * (g & t).sum() / max(1, g.sum() + t.sum())
                      for g, t in zip(guess, truth, strict=True)]  # fmt: skip
            pooled = 2 * (guess & truth).sum() / (guess.sum() + truth.sum())
            results.append((held, name, float(pooled), float(np.mean(slices))))
            print(f"  Sunnybrook {held} held out ({len(rows)} contoured slices, "
                  f"{len(result.history)} epochs, {trained:.1f} min), {name}: patient Dice "
                  f"{pooled:.3f}, per-slice mean {np.mean(slices):.3f} (median "
                  f"{np.median(slices):.3f})", flush=True)  # fmt: skip
    for name in (
        "network",
        "largest part",
        "--mirror, largest part",
        "largest part + convex hull",
        "--mirror, largest + hull",
    ):
        chosen = [r for r in results if r[1] == name]
        print(f"  mean over {len(chosen)} held-out patient(s), {name}: patient Dice "
              f"{np.mean([r[2] for r in chosen]):.3f}, per-slice mean "
              f"{np.mean([r[3] for r in chosen]):.3f} (target >= 0.85)")  # fmt: skip
    (work / "sunnybrook.json").write_text(json.dumps(results))


def phantom_quality(work: Path, device: str, epochs: int = 320) -> None:
    import cc3d

    from radpipe.dataset.build import BuildOptions, build, plan_build
    from radpipe.io import load
    from radpipe.models import TrainOptions, segment, train
    from radpipe.phantom import write_phantom_study

    studies = [
        write_phantom_study(work / "phantoms" / f"p{n}", patient_id=f"B-{n}", shape=(48, 192, 192),
                            spacing=(2.5, 1.8, 1.8), tumours=3, seed=20 + n)
        for n in range(4)
    ]  # fmt: skip
    options = BuildOptions(mode="2d", labelled_only=True)
    jobs = []
    for number, study in enumerate(studies[:3]):
        found, _ = plan_build(options, work / f"plan{number}", source=study.folder)
        jobs.extend(found)
    summary = build(jobs, work / "phantom.h5", options=options, workers=1)
    started = time.perf_counter()
    # 96×96 windows (a third centred on a label) of the 192×192 slices: four times the steps per
    # minute; a fixed number of epochs (not minutes), so the figure does not depend
    # on the host's speed (8 minutes on the 2026-12-02 host, ~16 on a slower one)
    options = TrainOptions(epochs=epochs, batch_size=4, learning_rate=3e-3, val_fraction=0.0,
                           device=device, patch_size=(96, 96))  # fmt: skip
    result = train(summary.path, work / "phantom-model", options=options)
    minutes = (time.perf_counter() - started) / 60
    tumour = next(v for v, n in result.card.classes.items() if n == "tumor")
    test = studies[3]
    image = load(test.series_folder)
    truth = test.phantom.labels.array
    voxel_ml = float(np.prod(image.spacing)) / 1000
    print(f"\nphantom: trained {minutes:.1f} min ({len(result.history)} epochs) on 3 patients, "
          "tested on a fourth")  # fmt: skip
    found = {}
    for mirror in (False, True):
        labels = segment(image, work / "phantom-model", device=device, mirror=mirror).labels.array
        guess, real = labels == tumour, truth == 2
        dice = 2 * (guess & real).sum() / (guess.sum() + real.sum())
        components = cc3d.connected_components(guess.astype(np.uint8), connectivity=26)
        rows = []
        for number, truth_tumour in enumerate(test.phantom.tumours, start=1):
            centre = tuple(int(v) for v in np.round(image.world_to_index(truth_tumour.centre_mm)))
            component = int(components[centre])
            predicted_ml = float((components == component).sum()) * voxel_ml if component else 0.0
            rows.append((number, truth_tumour.volume_ml, predicted_ml))
        how = "with --mirror" if mirror else "one pass"
        print(f"  {how}: tumour Dice {dice:.3f} (target >= 0.9)")
        for number, true_ml, predicted_ml in rows:
            print(f"    tumour {number}: truth {true_ml:.2f} ml, predicted {predicted_ml:.2f} ml "
                  f"({(predicted_ml - true_ml) / true_ml * 100:+.1f} %, "
                  "target within 5 %)")  # fmt: skip
        found[how] = {"dice": float(dice), "tumours": rows}
    (work / "phantom.json").write_text(json.dumps(found))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", default=["speed", "sunnybrook", "phantom"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--folds", type=int, default=3, help="Sunnybrook patients held out in turn")
    parser.add_argument("--minutes", type=float, default=9.0, help="Sunnybrook training budget")
    parser.add_argument("--phantom-epochs", type=int, default=320, help="phantom training length")
    arguments = parser.parse_args()
    _torch_threads()
    with tempfile.TemporaryDirectory(prefix="radpipe-bench-models-") as folder:
        work = Path(folder)
        chosen: dict[str, Any] = {
            "speed": lambda: (training_speed(work, arguments.device),
                              inference_speed(work, arguments.device)),
            "sunnybrook": lambda: sunnybrook(work, arguments.device, arguments.folds,
                                             arguments.minutes),
            "phantom": lambda: phantom_quality(work, arguments.device, arguments.phantom_epochs),
        }  # fmt: skip
        for part in arguments.parts:
            chosen[part]()


if __name__ == "__main__":
    main()
