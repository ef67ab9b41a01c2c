"""The viewer's HTTP API through Starlette's test client: tokens, slices, windows, overlays."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from PIL import Image

import radpipe
from radpipe.masks import masks_from_labelmap
from radpipe.phantom import make_phantom, tumour_heatmap
from radpipe.viewer.app import Session, create_app
from radpipe.viewer.state import make_scan


@pytest.fixture(scope="module")
def phantom():
    return make_phantom(shape=(40, 128, 128), spacing=(2.5, 1.5, 1.5), tumours=2, seed=2)


@pytest.fixture(scope="module")
def client(phantom):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    session = Session(
        make_scan(
            phantom.ct, masks=masks_from_labelmap(phantom.labels), heatmap=tumour_heatmap(phantom)
        )
    )
    test_client = TestClient(create_app(session))
    test_client.token = session.token  # type: ignore[attr-defined]
    return test_client


def get_png(client, **params):
    answer = client.get("/api/slice.png", params={"token": client.token, **params})
    assert answer.status_code == 200, answer.text
    return np.asarray(Image.open(io.BytesIO(answer.content)).convert("RGB"))


def test_token_is_required_everywhere(client):
    for path in ("/", "/api/info", "/api/slice.png", "/static/viewer.js"):
        assert client.get(path).status_code == 403
        assert client.get(path, params={"token": "wrong"}).status_code == 403
    page = client.get("/", params={"token": client.token})
    assert page.status_code == 200 and client.token in page.text
    assert client.get("/static/..%2Fapp.py", params={"token": client.token}).status_code == 404


def test_info_slices_for_each_plane_and_bad_indices(client, phantom):
    info = client.get("/api/info", params={"token": client.token}).json()
    assert info["panes"]["axial"]["count"] == 40 and info["panes"]["coronal"]["count"] == 128
    assert [label["name"] for label in info["labels"]] == ["liver", "tumor", "spleen"]
    assert info["summary"]["tumour_count"] == 2 and len(info["lesions"]) == 2
    assert not info["meta"]["patient"].startswith("PHANTOM")
    for plane in ("axial", "coronal", "sagittal"):
        image = get_png(client, plane=plane, index=5)
        pane = info["panes"][plane]
        assert image.shape[:2] == (pane["height"], pane["width"])
    bad = client.get(
        "/api/slice.png", params={"token": client.token, "plane": "axial", "index": 40}
    )
    assert bad.status_code == 400 and "outside 0..39" in bad.text
    assert (
        client.get("/api/slice.png", params={"token": client.token, "plane": "oblique"}).status_code
        == 400
    )


def test_window_and_overlays_change_the_pixels(client, phantom):
    soft = get_png(client, plane="axial", index=20, center=40, width=400)
    lung = get_png(client, plane="axial", index=20, center=-600, width=1500)
    body = phantom.labels.array[20] == 1  # liver pixels: brighter in the lung window
    scale = soft.shape[0] / 128
    rows, columns = np.nonzero(body)
    r, c = int(rows.mean() * scale), int(columns.mean() * scale)
    assert lung[r, c, 0] > soft[r, c, 0]
    lesion = client.get("/api/info", params={"token": client.token}).json()["lesions"][0]
    k, j, i = lesion["index"]
    plain = get_png(client, plane="axial", index=k)
    tumour = get_png(client, plane="axial", index=k, labels="2", label_opacity=1.0)
    y, x = int((j + 0.5) * scale), int((i + 0.5) * scale)
    assert plain[y, x].tolist() != tumour[y, x].tolist()
    heat = get_png(
        client, plane="axial", index=k, heatmap="1", colormap="red", heat_opacity=1.0, threshold=0.5
    )
    assert heat[y, x, 0] > 200 and heat[y, x, 1] < 80


def test_value_and_snapshot(client, phantom):
    answer = client.get(
        "/api/value", params={"token": client.token, "k": 3, "j": 60, "i": 70}
    ).json()
    assert answer["value"] == float(phantom.ct.array[3, 60, 70])
    assert answer["position_mm"] == pytest.approx(
        list(phantom.ct.index_to_world([3, 60, 70])), abs=0.01
    )
    shot = client.get(
        "/api/snapshot.png", params={"token": client.token, "k": 20, "j": 64, "i": 64}
    )
    assert shot.status_code == 200 and "attachment" in shot.headers["content-disposition"]
    assert Image.open(io.BytesIO(shot.content)).size[0] > 3 * 128


def test_real_head_ct_coronal_is_head_up(data_dir):
    from starlette.testclient import TestClient

    from radpipe.render import view
    from radpipe.windowing import Window

    volume = radpipe.load(data_dir / "dcm_qa_ct/In/Philips/S21570/S2010")
    session = Session(make_scan(volume))
    client = TestClient(create_app(session))
    answer = client.get(
        "/api/slice.png",
        params={
            "token": session.token,
            "plane": "coronal",
            "index": 256,
            "center": 40,
            "width": 80,
        },
    )
    served = np.asarray(Image.open(io.BytesIO(answer.content)).convert("RGB"))
    expected = view(volume, plane="coronal", index=256, window=Window(40, 80), annotations=False)
    assert served.shape == expected.shape
    assert np.abs(served.astype(int) - expected.astype(int)).max() <= 1


def test_dataset_root_lists_patients_and_opens_one(tmp_path):
    from starlette.testclient import TestClient

    from radpipe.phantom import write_phantom_study
    from radpipe.viewer.sessions import build_session

    for number in (1, 2):
        write_phantom_study(
            tmp_path / f"p{number}",
            patient_id=f"P-{number}",
            shape=(16, 48, 48),
            tumours=1,
            seed=number,
        )
    session = build_session(tmp_path, [], None)
    client = TestClient(create_app(session))
    info = client.get("/api/info", params={"token": session.token}).json()
    assert len(info["patients"]) == 2 and "panes" not in info
    assert client.get("/api/slice.png", params={"token": session.token}).status_code == 400
    patient = info["patients"][0]["patient"]
    opened = client.get("/api/open", params={"token": session.token, "patient": patient}).json()
    assert opened["panes"]["axial"]["count"] == 16 and opened["summary"]["tumour_count"] == 1
    assert (
        client.get("/api/open", params={"token": session.token, "patient": "../../etc"}).status_code
        == 400
    )
    work = session.work_dir
    assert work is not None and (work / "catalog.sqlite").is_file()
    session.close()  # the CLI closes it when the server stops, Ctrl-C included
    assert not work.exists()


def test_value_names_the_label_under_the_voxel(client, phantom):
    labels = phantom.labels.array
    for value, name in ((1, "liver"), (2, "tumor"), (0, None)):
        k, j, i = (int(v) for v in np.argwhere(labels == value)[0])
        answer = client.get("/api/value", params={"token": client.token, "k": k, "j": j, "i": i})
        assert answer.json()["label"] == value and answer.json()["label_name"] == name


def test_surface_from_the_front_is_the_labels_projection(client, phantom):
    """Seen from anterior, the drawn pixels are where some label lies along the ray (P axis)."""
    answer = client.get(
        "/api/surface.png",
        params={"token": client.token, "azimuth": 0, "labels": "1,2,3", "size": 128},
    )
    picture = np.asarray(Image.open(io.BytesIO(answer.content)).convert("RGB")).astype(int)
    drawn = np.any(picture != 17, axis=2)
    labels = phantom.labels.array
    spacing = np.array(phantom.ct.spacing)
    occupied = np.argwhere(labels > 0)
    start, stop = occupied.min(0), occupied.max(0) + 1
    extent = (stop - start) * spacing
    radius = np.linalg.norm(extent) / 2
    steps = ((np.arange(128) + 0.5) / 128 * 2 - 1) * radius
    # picture row → S (down the picture is inferior), column → L; index of the labelled box
    k = np.rint((extent[0] / 2 - steps) / spacing[0] - 0.5).astype(int) + start[0]
    i = np.rint((extent[2] / 2 + steps) / spacing[2] - 0.5).astype(int) + start[2]
    projection = (labels > 0).any(axis=1)  # (S, C): some label along P
    inside = ((k >= 0) & (k < labels.shape[0]))[:, None] & ((i >= 0) & (i < labels.shape[2]))[None]
    expected = np.zeros((128, 128), bool)
    kk, ii = np.clip(k, 0, labels.shape[0] - 1), np.clip(i, 0, labels.shape[2] - 1)
    expected[inside] = projection[np.ix_(kk, ii)][inside]
    assert expected.sum() > 2000
    assert (drawn == expected).mean() > 0.99
    # the liver (patient's right) is on the picture's left, the spleen on its right
    columns = {}
    for value in (1, 3):
        alone = client.get(
            "/api/surface.png",
            params={"token": client.token, "labels": str(value), "size": 128},
        )
        one = np.asarray(Image.open(io.BytesIO(alone.content)).convert("RGB")).astype(int)
        columns[value] = np.argwhere(np.any(one != 17, axis=2))[:, 1].mean()
    assert columns[1] < 64 < columns[3]
    too_small = client.get("/api/surface.png", params={"token": client.token, "size": 4})
    assert too_small.status_code == 400
