"""Whole-tree conversion: every series of a tree (zips too) becomes one NIfTI named from a
pattern with a BIDS-style JSON sidecar; identifiers pseudonymised; what cannot be converted is
listed and the run goes on. References: radpipe.load of each series (itself checked against
dcm2niix in tests/io) and the DICOM headers."""

from __future__ import annotations

import json
import re
import shutil
import zipfile

import numpy as np
import pydicom

import radpipe
from radpipe.cli.main import main
from radpipe.phantom import write_phantom_study


def test_a_tree_becomes_one_nifti_and_sidecar_per_series(data_dir, tmp_path, capsys):
    tree = tmp_path / "tree"
    for number in (1, 2):
        write_phantom_study(tree / f"p{number}", patient_id=f"PAT-{number}", shape=(16, 48, 48),
                            tumours=1, seed=number)  # fmt: skip
    shutil.copytree(data_dir / "dcm_qa_ct/In/Philips/S21570/S2010", tree / "philips")
    shutil.copytree(data_dir / "dcm_qa_nih/In/20180918Si/mr_0004", tree / "mosaic")
    archive = tmp_path / "tree.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for path in sorted(tree.rglob("*")):
            if path.is_file():
                handle.write(path, str(path.relative_to(tmp_path)))
    for source, out in ((tree, tmp_path / "nifti"), (archive, tmp_path / "from-zip")):
        assert main(["convert", str(source), str(out), "--workers", "2"]) == 0
        printed = capsys.readouterr().out
        assert "wrote 4 series" in printed and "not converted" not in printed  # mosaic too
        niftis = sorted(out.glob("*.nii.gz"))
        assert len(niftis) == 4
        assert not [p for p in niftis if "PAT-" in p.name]  # pseudonyms in names
        assert all(re.fullmatch(r"[A-Za-z0-9._-]+", p.name) for p in niftis)
        for nifti in niftis:
            facts = json.loads(nifti.with_name(nifti.name[: -len(".nii.gz")] + ".json").read_text())
            written = radpipe.load(nifti)
            if facts["Manufacturer"].startswith("Philips"):  # the real CT: compare voxels
                reference = radpipe.load(tree / "philips")
                header = pydicom.dcmread(reference.meta.source_files[0], stop_before_pixels=True)
                assert facts["SliceThickness"] == float(header.SliceThickness)
                assert facts["SeriesNumber"] == int(header.SeriesNumber)
                np.testing.assert_array_equal(written.array, reference.array)
                np.testing.assert_allclose(written.affine, reference.affine, atol=1e-4)
            assert facts["PatientID"].startswith("anon-") and facts["Modality"] in ("CT", "MR")
