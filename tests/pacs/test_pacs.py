"""DICOM networking against a real Orthanc: echo, send a real series, find it at every level,
get and move it back pixel-identical, resume, faults as one clear line, SEG round trip."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

pytest.importorskip("pynetdicom")

from radpipe.cli.main import main
from radpipe.errors import PacsError
from radpipe.io import load
from radpipe.pacs import echo, find, get, move, resolve_peer, send
from radpipe.pacs.testing import free_port

SERIES = "dcmqi/data/segmentations/ct-3slice"
STUDY_UID = "1.2.392.200103.20080913.113635.0.2009.6.22.21.43.10.22941.1"
SERIES_UID = "1.2.392.200103.20080913.113635.1.2009.6.22.21.43.10.23430.1"


def _peer(server):
    return resolve_peer("127.0.0.1", server.dicom_port, server.aet)


def _options(server):
    return ["--host", "127.0.0.1", "--port", str(server.dicom_port), "--called-aet", server.aet]


@pytest.fixture(scope="module")
def stored(orthanc, data_dir):
    result = send(_peer(orthanc), [data_dir / SERIES])
    assert result.sent == 3 and result.failed == []
    return orthanc


def test_echo_and_find_at_every_level(stored, capsys):
    peer = _peer(stored)
    assert 0 < echo(peer) < 5
    (patient,) = find(peer, "patient", PatientID="99000")
    assert patient["PatientName"] == "JANCT000"
    (study,) = find(peer, "study", PatientID="99000", StudyDate="20030101-20031231")
    assert study["StudyInstanceUID"] == STUDY_UID and study["NumberOfStudyRelatedInstances"] == "3"
    (series,) = find(peer, "series", StudyInstanceUID=STUDY_UID, Modality="CT")
    assert series["SeriesInstanceUID"] == SERIES_UID
    assert len(find(peer, "image", SeriesInstanceUID=SERIES_UID)) == 3
    assert find(peer, "study", StudyDate="19990101-19991231") == []
    # the CLI table is pseudonymised unless --keep-phi
    assert main(["pacs", "find", "--level", "study", *_options(stored)]) == 0
    printed = capsys.readouterr().out
    assert "99000" not in printed and "JANCT000" not in printed and "anon-" in printed
    assert main(["pacs", "find", "--json", "--keep-phi", *_options(stored)]) == 0
    assert "JANCT000" in capsys.readouterr().out


def test_get_and_move_back_pixel_identical_and_resume(stored, data_dir, tmp_path, capsys):
    original = load(data_dir / SERIES)
    peer = _peer(stored)
    got = get(peer, STUDY_UID, tmp_path / "got")
    assert len(got.received) == 3 and got.already_present == 0
    folder = tmp_path / "got" / STUDY_UID / SERIES_UID
    back = load(folder)
    np.testing.assert_array_equal(back.array, original.array)
    np.testing.assert_allclose(back.affine, original.affine, atol=1e-6)
    # resumable: one instance lost, only that one comes again
    lost = sorted(folder.glob("*.dcm"))[1]
    lost.unlink()
    again = get(peer, SERIES_UID, tmp_path / "got", level="series")
    assert len(again.received) == 1 and again.already_present == 2 and lost.is_file()
    assert not list((tmp_path / "got").rglob("*.part"))
    moved = move(peer, STUDY_UID, tmp_path / "moved", listen_port=stored.move_port)
    assert len(moved.received) == 3
    np.testing.assert_array_equal(load(tmp_path / "moved" / STUDY_UID / SERIES_UID).array,
                                  original.array)  # fmt: skip
    # the CLI, with a catalog of what arrived
    code = main(["pacs", "get", STUDY_UID, "-o", str(tmp_path / "cli"), "--catalog",
                 str(tmp_path / "cli.sqlite"), *_options(stored)])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "3 instance(s) received" in printed and "1 series" in printed
    # NIfTI of both equal (the converter's view of the same pixels)
    assert main(["convert", str(data_dir / SERIES), str(tmp_path / "a.nii.gz")]) == 0
    assert main(["convert", str(folder), str(tmp_path / "b.nii.gz")]) == 0
    np.testing.assert_array_equal(
        load(tmp_path / "a.nii.gz").array, load(tmp_path / "b.nii.gz").array
    )


def test_faults_are_one_clear_line(stored, tmp_path, capsys):
    cases = [
        (["pacs", "echo", "--host", "127.0.0.1", "--port", str(stored.dicom_port),
          "--called-aet", "NOT-ORTHANC"], "refused the association"),
        (["pacs", "echo", "--host", "127.0.0.1", "--port", str(free_port())], "cannot reach"),
        (["pacs", "get", "1.2.3.4.5", "-o", str(tmp_path / "x"), *_options(stored)],
         "holds no study 1.2.3.4.5"),
        (["pacs", "echo"], "no PACS given"),
        (["pacs", "send", str(tmp_path), *_options(stored)], "no DICOM instance"),
    ]  # fmt: skip
    for arguments, expected in cases:
        assert main(arguments) == 1, arguments
        err = capsys.readouterr().err.strip()
        assert expected in err and len(err.splitlines()) == 1, (arguments, err)


def test_peer_stopping_mid_transfer_keeps_complete_files(fresh_orthanc, data_dir, tmp_path):
    from radpipe.phantom import write_phantom_study

    study = write_phantom_study(tmp_path / "study", shape=(40, 64, 64), tumours=1, seed=4)
    peer = _peer(fresh_orthanc)
    assert send(peer, [study.series_folder]).sent == 40
    uid = str(pydicom.dcmread(study.files[0], stop_before_pixels=True).StudyInstanceUID)
    arrived = []

    def stop_after_five(count: int) -> None:
        arrived.append(count)
        if len(arrived) == 5:
            fresh_orthanc.kill()

    with pytest.raises(PacsError, match="run the same command again"):
        get(peer, uid, tmp_path / "got", progress=stop_after_five)
    kept = sorted((tmp_path / "got").rglob("*.dcm"))
    assert 5 <= len(kept) < 40 and not list((tmp_path / "got").rglob("*.part"))
    for path in kept:  # every file that is there is whole
        pydicom.dcmread(path).pixel_array  # noqa: B018
    fresh_orthanc.start()  # same storage: the study is still on the PACS
    rest = get(peer, uid, tmp_path / "got")
    assert rest.already_present == len(kept) and len(rest.received) == 40 - len(kept)
    np.testing.assert_array_equal(
        load(next((tmp_path / "got").glob("*/*"))).array, load(study.series_folder).array
    )


def test_seg_goes_to_the_pacs_and_comes_back(stored, data_dir, tmp_path):
    import highdicom as hd

    peer = _peer(stored)
    seg = data_dir / "dcmqi/data/segmentations/liver.dcm"
    assert send(peer, [seg]).sent == 1
    (series,) = find(peer, "series", StudyInstanceUID=STUDY_UID, Modality="SEG")
    got = get(peer, series["SeriesInstanceUID"], tmp_path / "seg", level="series")
    (path,) = got.received
    back = hd.seg.segread(path)
    original = hd.seg.segread(seg)
    assert back.SOPInstanceUID == original.SOPInstanceUID
    np.testing.assert_array_equal(back.pixel_array, original.pixel_array)


def test_dicomweb_search_retrieve_and_store(fresh_orthanc, data_dir, tmp_path, capsys):
    from radpipe.pacs import dicomweb as web

    url = fresh_orthanc.dicomweb
    if url is None:
        pytest.skip("Orthanc's DICOMweb plugin is not installed")
    assert web.send(url, [data_dir / SERIES]).sent == 3
    (study,) = web.find(url, "study", PatientID="99000")
    assert study["StudyInstanceUID"] == STUDY_UID
    (series,) = web.find(url, "series", StudyInstanceUID=STUDY_UID)
    assert series["SeriesInstanceUID"] == SERIES_UID
    got = web.get(url, STUDY_UID, tmp_path / "web")
    assert len(got.received) == 3
    np.testing.assert_array_equal(load(tmp_path / "web" / STUDY_UID / SERIES_UID).array,
                                  load(data_dir / SERIES).array)  # fmt: skip
    again = web.get(url, STUDY_UID, tmp_path / "web")
    assert again.received == [] and again.already_present == 3
    assert main(["pacs", "find", "--dicomweb", url, "--level", "series", "--json"]) == 0
    assert SERIES_UID in capsys.readouterr().out
    fresh_orthanc.stop()
    assert main(["pacs", "find", "--dicomweb", url]) == 1
    err = capsys.readouterr().err.strip()
    assert "cannot reach" in err and len(err.splitlines()) == 1


def test_analysis_results_as_seg_and_sr_go_back_to_the_pacs(stored, tmp_path, capsys):
    """analyze --send: a SEG with a segment per lesion and a TID 1500 SR whose groups carry
    each lesion's volume (phantom truth), diameters and HU, referencing that SEG; highdicom
    reads both, dciodvfy finds no error, Orthanc holds them after."""
    import shutil
    import subprocess

    import highdicom as hd
    from pydicom.sr.codedict import codes

    from radpipe.phantom import write_phantom_study

    study = write_phantom_study(tmp_path / "p", patient_id="SR-1", shape=(24, 96, 96), tumours=2,
                                seed=3)  # fmt: skip
    code = main(["analyze", str(tmp_path / "p"), "-o", str(tmp_path / "report"), "--no-pictures",
                 "--send", *_options(stored)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "2 of 2 result instance(s) stored" in printed
    (seg_path,) = (tmp_path / "report" / "dicom").glob("*/seg.dcm")
    sr_path = seg_path.with_name("sr.dcm")
    seg = hd.seg.segread(seg_path)
    labels = [item.SegmentLabel for item in seg.SegmentSequence]
    assert labels[-2:] == ["lesion 1", "lesion 2"]
    sr = hd.sr.srread(sr_path)
    groups = sr.content.get_volumetric_roi_measurement_groups()
    assert len(groups) == 2
    truth = sorted((t.volume_ml for t in study.phantom.tumours), reverse=True)
    for group, expected_ml in zip(groups, truth, strict=True):
        volume = group.get_measurements(name=codes.SCT.Volume)[0]
        assert volume.value == pytest.approx(expected_ml * 1000, rel=1e-6)
        assert group.get_measurements(name=codes.SCT.Mean)[0].unit.value == "[hnsf'U]"
        reference = group.referenced_segment
        assert reference.referenced_sop_instance_uid == seg.SOPInstanceUID
        (number,) = reference.referenced_segment_numbers
        assert labels[number - 1].startswith("lesion ")
    assert "SR-1" not in sr_path.read_bytes().decode("latin-1")  # pseudonymised
    if shutil.which("dciodvfy"):
        for path in (seg_path, sr_path):
            checked = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
            errors = [line for line in checked.stderr.splitlines() if line.startswith("Error")]
            assert errors == [], (path.name, errors)
    assert {row["Modality"] for row in find(_peer(stored), "series", PatientID="*")} >= {
        "SEG",
        "SR",
    }


def _wait_for(path_glob, folder, timeout=60):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted(folder.glob(path_glob))
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"nothing like {path_glob} in {folder} after {timeout} s")


def test_listening_node_files_studies_and_runs_its_hooks(data_dir, tmp_path):
    """A storage SCP files a CT + SEG study sent to it and analyses it once the association
    ends; with a model it segments an incoming phantom and analyses the prediction."""
    import json

    from radpipe.pacs.hooks import study_hook
    from radpipe.pacs.peer import Peer
    from radpipe.pacs.storage import StorageNode

    port = free_port()
    results = tmp_path / "results"
    hook = study_hook(results=results, analyze=True, catalog=tmp_path / "node.sqlite")
    with StorageNode(tmp_path / "incoming", port=port, on_study=hook, settle_seconds=0.5) as node:
        seg = data_dir / "dcmqi/data/segmentations/liver.dcm"
        sent = send(Peer("127.0.0.1", port, "RADPIPE"), [data_dir / SERIES, seg])
        assert sent.sent == 4
        (report,) = _wait_for("*/report/report.json", results)
    assert node.problems == []
    assert len(list((tmp_path / "incoming" / STUDY_UID).glob("*/*.dcm"))) == 4
    organs = {o["name"]: o for o in json.loads(report.read_text())["patients"][0]["organs"]}
    assert organs["Liver"]["voxels"] > 0 or organs.get("liver", {}).get("voxels", 0) > 0
    assert (tmp_path / "node.sqlite").is_file()

    pytest.importorskip("monai")
    from radpipe.dataset.build import BuildOptions, build, plan_build
    from radpipe.models import TrainOptions, train
    from radpipe.phantom import write_phantom_study

    study = write_phantom_study(tmp_path / "ph", shape=(16, 64, 64), tumours=1, seed=5)
    jobs, _ = plan_build(BuildOptions(), tmp_path / "plan", source=study.folder)
    dataset = build(jobs, tmp_path / "d.h5", options=BuildOptions(), workers=1).path
    train(dataset, tmp_path / "model", options=TrainOptions(epochs=1, val_fraction=0.0))
    port = free_port()
    hook = study_hook(results=tmp_path / "r2", model=tmp_path / "model", analyze=True)
    with StorageNode(tmp_path / "in2", port=port, on_study=hook, settle_seconds=0.5) as node:
        assert send(Peer("127.0.0.1", port, "RADPIPE"), [study.series_folder]).sent == 16
        (labels,) = _wait_for("*/labels/*.nii.gz", tmp_path / "r2")
        _wait_for("*/report/report.json", tmp_path / "r2")
    assert node.problems == []
    assert load(labels).shape == load(study.series_folder).spatial_shape


def test_several_studies_at_once_locally_and_on_dask(fresh_orthanc, tmp_path, capsys):
    """`pacs get UID UID UID`: the same files from two local processes and from a Dask
    cluster; a UID the PACS lacks is reported in one line while the others arrive."""
    import hashlib

    distributed = pytest.importorskip("dask.distributed")
    from radpipe.phantom import write_phantom_study

    uids = []
    for number in range(3):
        study = write_phantom_study(tmp_path / f"s{number}", patient_id=f"MANY-{number}",
                                    shape=(6, 32, 32), tumours=0, seed=number)  # fmt: skip
        assert send(_peer(fresh_orthanc), [study.series_folder]).sent == 6
        uids.append(str(pydicom.dcmread(study.files[0], stop_before_pixels=True).StudyInstanceUID))

    def digest(folder):
        return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(folder.rglob("*.dcm"))}  # fmt: skip

    options = _options(fresh_orthanc)
    assert main(["pacs", "get", *uids, "-o", str(tmp_path / "local"), "--workers", "2",
                 *options]) == 0  # fmt: skip
    local = digest(tmp_path / "local")
    assert len(local) == 18 and {key.split("/")[0] for key in local} == set(uids)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:  # fmt: skip
        assert main(["pacs", "get", *uids, "-o", str(tmp_path / "dask"), "--scheduler",
                     cluster.scheduler_address, *options]) == 0  # fmt: skip
    assert digest(tmp_path / "dask") == local
    capsys.readouterr()
    code = main(["pacs", "get", uids[0], "1.2.3.4.5", "-o", str(tmp_path / "mixed"), *options])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "1 of 2 retrieval(s) failed" in err and "1.2.3.4.5" in err
    assert len(err.splitlines()) == 1
    assert len(digest(tmp_path / "mixed")) == 6  # the good study still arrived
