"""The Jupyter widget in a real kernel (nbclient), on phantom patients laid out as `radpipe demo`
writes them and on a real CT dataset with RTSTRUCTs; pydicom and the phantom are the oracles."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest

from radpipe.errors import RadpipeError
from radpipe.phantom import write_phantom_study

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipywidgets")
pytest.importorskip("ipykernel")

WIDGET = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory):
    """Two phantom patients as `radpipe demo` lays them out (patientNN/CT + labels.nii.gz)."""
    root = tmp_path_factory.mktemp("demo")
    studies = [
        write_phantom_study(
            root / f"patient{n:02d}",
            patient_id=f"DEMO-{n:03d}",
            shape=(20, 64, 72),
            spacing=(2.5, 1.8, 1.6),
            tumours=n,
            seed=n,
        )
        for n in (1, 2)
    ]
    return root, studies


def run_cells(sources: list[str], cwd: Path) -> list[list[dict]]:
    """Execute code cells in a fresh kernel; each cell's outputs."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    client = nbclient.NotebookClient(
        notebook, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    )
    client.execute()
    return [cell["outputs"] for cell in notebook.cells]


def printed(outputs: list[dict]) -> dict:
    text = "".join(o.get("text", "") for o in outputs if o["output_type"] == "stream")
    return json.loads(text.strip().splitlines()[-1])


def test_explore_demo_patient_and_real_rtstruct_dataset_in_a_kernel(demo_root, data_dir, tmp_path):
    root, studies = demo_root
    real = data_dir / "pyCERR" / "radiomics_phantom_dicom"
    outputs = run_cells(
        [
            "import json\nfrom radpipe.notebook import explore\n"
            f"e = explore({str(root)!r}, patient=2, mask='liver')\ne",
            "print(json.dumps(e.state()))",
            "k, j, i = e.state()['lesions'][0]['index']\ne.jump(k, j, i)\n"
            "e._preset.value = 'lung'\nprint(json.dumps(e.state()))",
            "e._range.value = (-200, 300)\nprint(json.dumps(e.state()))",
            f"r = explore({str(real)!r}, patient='pat_3', mask='all')\nr",
            "print(json.dumps(r.state()))",
        ],
        tmp_path,
    )
    assert any(WIDGET in o.get("data", {}) for o in outputs[0])
    state = printed(outputs[1])
    phantom = studies[1].phantom
    assert state["folder"] == "patient02" and state["patients"] == 2
    assert state["shape"] == [20, 64, 72]
    assert state["spacing"] == pytest.approx([2.5, 1.8, 1.6], abs=1e-4)
    assert state["masks"] == ["liver"] and state["all_masks"] == ["liver", "tumor", "spleen"]
    assert len(state["lesions"]) == len(phantom.tumours) == 2
    assert not state["patient"].startswith("DEMO")  # pseudonymised by default
    header = pydicom.dcmread(sorted((root / "patient02" / "CT").glob("*.dcm"))[0])
    expected = (
        [float(header.WindowCenter), float(header.WindowWidth)]
        if "WindowCenter" in header
        else [40.0, 400.0]
    )
    assert state["window"] == expected and state["preset"] == "header default"
    jumped = printed(outputs[2])
    # the lesion jump lands inside a tumour of the phantom (LPS-canonical = stored order here)
    assert phantom.labels.array[tuple(jumped["point"])] == 2
    assert jumped["window"] == [-600.0, 1500.0] and jumped["preset"] == "lung"
    dragged = printed(outputs[3])
    assert dragged["window"] == [50.0, 500.0] and dragged["preset"] == "custom"

    assert any(WIDGET in o.get("data", {}) for o in outputs[4])
    real_state = printed(outputs[5])
    files = [pydicom.dcmread(p, stop_before_pixels=True) for p in (real / "pat_3").glob("*.dcm")]
    images = sorted(
        (f for f in files if f.Modality == "CT"), key=lambda f: float(f.ImagePositionPatient[2])
    )
    z = [float(f.ImagePositionPatient[2]) for f in images]
    assert real_state["shape"] == [len(images), int(images[0].Rows), int(images[0].Columns)]
    assert real_state["spacing"] == pytest.approx(
        [float(np.median(np.diff(z))), *(float(v) for v in images[0].PixelSpacing)], abs=1e-4
    )
    rtstruct = next(f for f in files if f.Modality == "RTSTRUCT")
    names = [roi.ROIName for roi in rtstruct.StructureSetROISequence]
    assert real_state["all_masks"] == names and real_state["masks"] == names
    assert len(real_state["lesions"]) >= 1 and real_state["lesions"][0]["source"] == "GTV-1"


def test_explore_errors_name_the_choices(demo_root, tmp_path):
    from radpipe.notebook import explore

    root, _ = demo_root
    with pytest.raises(RadpipeError, match="numbered 1 to 2"):
        explore(root, patient=3)
    with pytest.raises(RadpipeError, match="patient01, patient02"):
        explore(root, patient="patient09")
    with pytest.raises(RadpipeError, match="its masks are liver, tumor, spleen"):
        explore(root, patient=1, mask="kidney")
    with pytest.raises(RadpipeError, match="no such file or folder"):
        explore(tmp_path / "missing")


def test_explore_a_volume_with_a_labelmap_and_heatmap(tmp_path):
    """In-process: a Volume source, its LabelMap, a heatmap array and the window controls."""
    import io

    from PIL import Image

    from radpipe.notebook import explore
    from radpipe.phantom import make_phantom, tumour_heatmap

    phantom = make_phantom(shape=(16, 48, 56), spacing=(2.5, 2.0, 1.8), tumours=1, seed=4)
    heat = tumour_heatmap(phantom)
    e = explore(phantom.ct, masks=phantom.labels, mask="tumor", heatmap=heat)
    state = e.state()
    assert state["shape"] == [16, 48, 56] and state["heatmap"] is True
    assert state["masks"] == ["tumor"] and state["patients"] == 1
    k, j, i = state["lesions"][0]["index"]
    e.jump(k, j, i)
    hot = np.asarray(Image.open(io.BytesIO(e._images["axial"].value)).convert("RGB"))
    e._heat_box.value = False
    plain = np.asarray(Image.open(io.BytesIO(e._images["axial"].value)).convert("RGB"))
    assert hot.shape == plain.shape and (hot != plain).any()  # the heatmap is drawn
    e.set_window(400, 1800)
    assert e.state()["preset"] == "bone"
    e.set_window(123, 45)
    assert e.state()["preset"] == "custom"
    with pytest.raises(RadpipeError, match="MaskSet or a LabelMap"):
        explore(phantom.ct, masks="labels.nii.gz")
