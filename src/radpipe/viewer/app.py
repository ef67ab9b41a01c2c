"""The viewer's ASGI app (Starlette): the static page, rendered slices as PNG and JSON endpoints
for metadata, values, the catalog and the analysis; every request needs the session token."""

from __future__ import annotations

import asyncio
import math
import secrets
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from radpipe._optional import import_optional
from radpipe.errors import RadpipeError
from radpipe.viewer.state import (
    Scan,
    ViewRequest,
    pane_geometry,
    png_bytes,
    presets,
    render_pane,
    three_pane_picture,
)
from radpipe.windowing import Window

STATIC = Path(__file__).parent / "static"


class Session:
    """The scans a viewer serves: one, or a dataset's patients opened on demand.

    A scan still loading is given as ``pending``: the server answers the page at once and
    its data requests wait for the scan.
    """

    def __init__(
        self,
        scan: Scan | None = None,
        *,
        pending: Future[Scan] | None = None,
        patients: list[dict[str, Any]] | None = None,
        opener: Callable[[str], Scan] | None = None,
        token: str | None = None,
        work_dir: str | Path | None = None,
    ) -> None:
        self.scan = scan
        self.pending = pending
        self._lock = threading.Lock()
        self._generation = 0
        self.patients = patients or []
        self.opener = opener
        self.token = token or secrets.token_urlsafe(16)
        self.work_dir = Path(work_dir) if work_dir is not None else None

    def close(self) -> None:
        """Remove the session's temporary files (its catalog)."""
        if self.work_dir is not None:
            shutil.rmtree(self.work_dir, ignore_errors=True)
            self.work_dir = None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def current(self) -> Scan | None:
        """The scan on show (the loading one once it is loaded; its error if it failed)."""
        pending = self.pending  # read once: requests finishing their wait run concurrently
        if pending is not None:
            self.scan = pending.result()
            self.pending = None
        return self.scan

    def open(self, patient: str) -> Scan:
        """Load a patient of the dataset (only patients the catalog lists); of two quick
        choices the later one is shown, whichever finishes loading first."""
        if self.opener is None or patient not in {p["patient"] for p in self.patients}:
            raise KeyError(patient)
        with self._lock:
            self._generation += 1
            mine = self._generation
        scan = self.opener(patient)
        with self._lock:
            if mine == self._generation:
                self.scan = scan
            return scan


def create_app(session: Session) -> Any:
    """The Starlette application for ``session``."""
    starlette = import_optional("starlette", extra="viewer")
    del starlette
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import (
        FileResponse,
        HTMLResponse,
        JSONResponse,
        PlainTextResponse,
        Response,
    )
    from starlette.routing import Route

    def allowed(request: Request) -> bool:
        given = request.query_params.get("token") or request.headers.get("x-token", "")
        return secrets.compare_digest(given.encode(), session.token.encode())

    def guarded(handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def wrapper(request: Request) -> Any:
            if not allowed(request):
                return PlainTextResponse("forbidden: missing or wrong token", status_code=403)
            try:
                if session.pending is not None and request.url.path.startswith("/api/"):
                    await asyncio.wrap_future(session.pending)
                # rendering releases the GIL (NumPy, zlib): panes render on both cores at once
                return await run_in_threadpool(handler, request)
            except (ValueError, KeyError, RadpipeError) as exc:
                return PlainTextResponse(f"bad request: {exc}", status_code=400)

        return wrapper

    def need_scan() -> Scan:
        scan = session.current()
        if scan is None:
            raise KeyError("no scan is open; choose a patient")
        return scan

    def request_from(request: Request, scan: Scan) -> ViewRequest:
        query = request.query_params
        from radpipe.render import Plane

        plane = Plane(query.get("plane", "axial"))
        count = pane_geometry(scan)[plane.value]["count"]
        index = int(query.get("index", count // 2))
        if not 0 <= index < count:
            raise ValueError(f"{plane.value} slice {index} is outside 0..{count - 1}")
        window = Window(
            float(query.get("center", scan.window.center)),
            float(query.get("width", scan.window.width)),
        )
        labels = tuple(int(v) for v in query.get("labels", "").split(",") if v.strip())
        threshold = query.get("threshold")
        return ViewRequest(
            plane=plane,
            index=index,
            window=window,
            labels=labels,
            label_opacity=float(query.get("label_opacity", 0.4)),
            heatmap=query.get("heatmap") == "1",
            colormap=query.get("colormap", "jet"),
            heat_opacity=float(query.get("heat_opacity", 0.5)),
            threshold=float(threshold) if threshold not in (None, "") else None,
        )

    def index_page(request: Request) -> Any:
        page = (STATIC / "index.html").read_text().replace("TOKEN", session.token)
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    def static_file(request: Request) -> Any:
        name = request.path_params["name"]
        path = (STATIC / name).resolve()
        if path.parent != STATIC.resolve() or not path.is_file():
            return PlainTextResponse("not found", status_code=404)
        return FileResponse(path)

    def info(request: Request) -> Any:
        scan = session.current()
        document: dict[str, Any] = {"patients": session.patients, "presets": presets()}
        if scan is not None:
            document.update(
                {
                    "meta": scan.meta,
                    "window": [scan.window.center, scan.window.width],
                    "panes": pane_geometry(scan),
                    "labels": [
                        {
                            "value": value,
                            "name": name,
                            "colour": list(scan.colours.get(value, (255, 0, 0))),
                        }
                        for value, name in scan.label_names.items()
                    ],
                    "heatmap": scan.heat is not None,
                    "lesions": scan.lesions,
                    "summary": scan.summary,
                }
            )
        return JSONResponse(document)

    def slice_png(request: Request) -> Any:
        scan = need_scan()
        picture = render_pane(scan, request_from(request, scan))
        return Response(
            png_bytes(picture), media_type="image/png", headers={"Cache-Control": "no-store"}
        )

    def value(request: Request) -> Any:
        scan = need_scan()
        k, j, i = (int(request.query_params[name]) for name in ("k", "j", "i"))
        shape = scan.image.spatial_shape
        if not (0 <= k < shape[0] and 0 <= j < shape[1] and 0 <= i < shape[2]):
            raise ValueError(f"voxel ({k}, {j}, {i}) is outside {shape}")
        position = scan.image.index_to_world([k, j, i])
        label, name = scan.label_at(k, j, i)
        return JSONResponse(
            {
                "value": float(scan.image.array[k, j, i]),
                "position_mm": [round(float(v), 2) for v in position],
                "units": scan.meta.get("units"),
                "label": label,
                "label_name": name,
            }
        )

    def surface_png(request: Request) -> Any:
        scan = need_scan()
        query = request.query_params
        chosen = [int(v) for v in query.get("labels", "").split(",") if v.strip()]
        size = int(query.get("size", 192))
        if not 32 <= size <= 256:
            raise ValueError(f"3-D picture size {size} is outside 32..256")
        azimuth, elevation = float(query.get("azimuth", 0)), float(query.get("elevation", 0))
        if not (math.isfinite(azimuth) and math.isfinite(elevation)):
            raise ValueError("azimuth and elevation must be finite degrees")
        picture = scan.surface().render(
            azimuth,
            elevation,
            {value: scan.colours[value] for value in chosen if value in scan.colours},
            scan.label_names,
            size=size,
        )
        return Response(
            png_bytes(picture), media_type="image/png", headers={"Cache-Control": "no-store"}
        )

    def snapshot(request: Request) -> Any:
        scan = need_scan()
        base = request_from(request, scan)
        point = tuple(int(request.query_params[name]) for name in ("k", "j", "i"))
        picture = three_pane_picture(scan, (point[0], point[1], point[2]), base)
        return Response(
            png_bytes(picture), media_type="image/png",
            headers={"Content-Disposition": 'attachment; filename="radpipe-view.png"'},
        )  # fmt: skip

    def open_patient(request: Request) -> Any:
        session.open(request.query_params["patient"])
        return info(request)

    routes = [
        Route("/", guarded(index_page)),
        Route("/static/{name}", guarded(static_file)),
        Route("/api/info", guarded(info)),
        Route("/api/slice.png", guarded(slice_png)),
        Route("/api/value", guarded(value)),
        Route("/api/surface.png", guarded(surface_png)),
        Route("/api/snapshot.png", guarded(snapshot)),
        Route("/api/open", guarded(open_patient)),
    ]
    return Starlette(routes=routes)
