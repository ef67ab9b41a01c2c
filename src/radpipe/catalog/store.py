"""The catalog: a SQLite database of patients → studies → series → files and the problems met,
built by ``scan`` and doubling as its cache (unchanged files are not read again)."""

from __future__ import annotations

import contextlib
import csv
import gc
import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from radpipe.catalog.discover import (
    BuiltCatalog,
    DescribeOptions,
    FileEntry,
    build_series,
    describe,
)
from radpipe.catalog.entries import EXPORT_COLUMNS, SeriesEntry
from radpipe.errors import DatasetError, FormatError, ReadError, SeriesError
from radpipe.io import registry
from radpipe.io.atomic import Inputs
from radpipe.io.sources import (
    ArchiveLimits,
    Problem,
    Source,
    archive_sources,
    is_archive,
    natural_key,
    walk_sources,
)
from radpipe.volume import Volume

SCHEMA_VERSION = "3"
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    location TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    kind TEXT NOT NULL, series_key TEXT, facts TEXT NOT NULL, records TEXT NOT NULL,
    problem TEXT
);
CREATE INDEX IF NOT EXISTS files_series ON files (series_key);
CREATE TABLE IF NOT EXISTS patients (
    patient TEXT PRIMARY KEY, studies INTEGER NOT NULL, series INTEGER NOT NULL,
    layouts TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS studies (
    study_uid TEXT PRIMARY KEY, patient TEXT NOT NULL, description TEXT, study_date TEXT,
    series INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS studies_patient ON studies (patient);
CREATE TABLE IF NOT EXISTS series (
    key TEXT PRIMARY KEY, patient TEXT NOT NULL, study_uid TEXT, series_uid TEXT,
    modality TEXT, description TEXT, role TEXT NOT NULL, name TEXT, layout TEXT NOT NULL,
    format TEXT NOT NULL, shape TEXT, slices INTEGER, rows INTEGER, columns INTEGER,
    spacing_slice REAL, spacing_row REAL, spacing_column REAL, orientation TEXT,
    slice_spacing_regular INTEGER, gantry_tilt_deg REAL, files INTEGER NOT NULL,
    first_location TEXT NOT NULL, linked TEXT, warnings TEXT NOT NULL, facts TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS series_patient ON series (patient);
CREATE INDEX IF NOT EXISTS series_modality ON series (modality);
CREATE INDEX IF NOT EXISTS series_role ON series (role);
CREATE TABLE IF NOT EXISTS problems (location TEXT NOT NULL, reason TEXT NOT NULL);
"""


@dataclass(frozen=True)
class ScanReport:
    """What a scan did: files seen, read again, removed, problems, and seconds taken."""

    files: int
    read: int
    removed: int
    series: int
    patients: int
    problems: int
    seconds: float


class Catalog:
    """A scanned dataset: query series, list problems, load volumes, export tables.

    Use :func:`open_catalog` or :func:`scan` to get one.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise DatasetError(f"{self.path}: no catalog here; create one with `radpipe scan`")
        self._connection = sqlite3.connect(self.path)
        self._connection.row_factory = sqlite3.Row
        version = self._meta("schema_version")
        if version != SCHEMA_VERSION:
            self._connection.close()
            raise DatasetError(
                f"{self.path}: not a radpipe catalog of schema {SCHEMA_VERSION} (found "
                f"{version!r}); scan again to rebuild it"
            )
        tables = {
            str(row[0])
            for row in self._connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        missing = {"files", "patients", "studies", "series", "problems"} - tables
        if missing:
            self._connection.close()
            raise DatasetError(
                f"{self.path}: a damaged radpipe catalog (no {', '.join(sorted(missing))} "
                "table); delete it and run `radpipe scan` again"
            )
        if self._meta("built") is None:
            self._connection.close()
            raise DatasetError(
                f"{self.path}: the scan that made this catalog did not finish (interrupted?); "
                "run `radpipe scan` again to complete it"
            )

    def _meta(self, key: str) -> str | None:
        try:
            row = self._connection.execute(
                "SELECT value FROM meta WHERE key = ?", (key,)
            ).fetchone()
        except sqlite3.DatabaseError as exc:
            raise DatasetError(f"{self.path}: not a radpipe catalog ({exc})") from exc
        return None if row is None else str(row[0])

    @property
    def root(self) -> str:
        """The folder or archive that was scanned."""
        return self._meta("root") or ""

    def close(self) -> None:
        """Close the database."""
        self._connection.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def patients(self) -> list[dict[str, Any]]:
        """Patients (pseudonymised unless the scan kept identifiers) with study / series counts."""
        rows = self._connection.execute("SELECT * FROM patients ORDER BY patient").fetchall()
        return [dict(row) for row in rows]

    def studies(self, *, patient: str | None = None) -> list[dict[str, Any]]:
        """Studies, optionally of one patient."""
        query, args = "SELECT * FROM studies", []
        if patient is not None:
            query, args = query + " WHERE patient = ?", [patient]
        return [dict(row) for row in self._connection.execute(query + " ORDER BY patient", args)]

    def series(
        self,
        *,
        modality: str | None = None,
        role: str | None = None,
        patient: str | None = None,
        layout: str | None = None,
        name: str | None = None,
        max_slice_spacing: float | None = None,
        min_slices: int | None = None,
    ) -> list[SeriesEntry]:
        """Series matching every given filter.

        Examples
        --------
        >>> catalog.series(modality="CT", max_slice_spacing=1.5)  # doctest: +SKIP
        """
        clauses: list[str] = []
        args: list[Any] = []
        for column, value in (
            ("modality", modality),
            ("role", role),
            ("patient", patient),
            ("layout", layout),
            ("name", name),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        if max_slice_spacing is not None:
            clauses.append("spacing_slice <= ?")
            args.append(max_slice_spacing)
        if min_slices is not None:
            clauses.append("slices >= ?")
            args.append(min_slices)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._connection.execute(f"SELECT * FROM series{where}", args).fetchall()
        entries = [_series_entry(row) for row in rows]
        entries.sort(key=lambda e: (e.patient, e.study_uid or "", natural_key(e.first_location)))
        return entries

    def get(self, key: str) -> SeriesEntry:
        """One series by its key."""
        row = self._connection.execute("SELECT * FROM series WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise DatasetError(f"{self.path}: no series {key!r} in the catalog")
        return _series_entry(row)

    def files(self, series: SeriesEntry | str) -> list[str]:
        """Locations of a series' files, in natural order."""
        key = series.key if isinstance(series, SeriesEntry) else series
        rows = self._connection.execute(
            "SELECT location FROM files WHERE series_key = ?", (key,)
        ).fetchall()
        return sorted((str(row[0]) for row in rows), key=natural_key)

    def problems(self) -> list[tuple[str, str]]:
        """(location, reason) of everything that could not be scanned."""
        rows = self._connection.execute("SELECT location, reason FROM problems").fetchall()
        return [(str(r[0]), str(r[1])) for r in rows]

    def load(self, series: SeriesEntry | str, *, on_duplicate: str = "error") -> Volume:
        """Load a series as a Volume (members of zip archives included).

        Parameters
        ----------
        series : SeriesEntry or str
            An entry or its key.
        on_duplicate : {"error", "first", "last"}
            DICOM: images sharing a slice position, as :func:`radpipe.load` treats them.

        Raises
        ------
        FormatError
            For contour and SEG / RTSTRUCT entries, which the mask readers handle.
        SeriesError
            For duplicate slice positions with ``on_duplicate="error"``, or a series whose
            folder holds files that could not be read (damaged slices).
        """
        entry = series if isinstance(series, SeriesEntry) else self.get(series)
        damaged = entry.facts.get("damaged_files") or []
        if damaged:
            raise SeriesError(
                f"{entry.first_location.rsplit('/', 1)[0]}: {len(damaged)} file(s) of this series' "
                f"folder cannot be read (e.g. {damaged[0]}), so the volume would miss slices; "
                "restore or remove them and scan again"
            )
        if entry.format == "DICOM":
            return self._load_dicom(entry, on_duplicate)
        if entry.format == "DICOM mosaic":
            from radpipe.io.dicom.mosaic import read_mosaic_series

            return read_mosaic_series(self.files(entry), series=entry.series_uid)
        if registry.format_of(entry.first_location) is not None:
            from radpipe.io import load
            from radpipe.io.sources import local_copy

            with local_copy(entry.first_location) as path:
                return load(path)
        raise FormatError(
            f"{entry.key}: a {entry.format} entry is not a volume; read it with the mask tools"
        )

    def _load_dicom(self, entry: SeriesEntry, on_duplicate: str) -> Volume:
        from radpipe.io.dicom.headers import FrameRecord
        from radpipe.io.dicom.series import assemble, plan_series

        rows = self._connection.execute(
            "SELECT records FROM files WHERE series_key = ?", (entry.key,)
        ).fetchall()
        records = [FrameRecord.from_json(data) for row in rows for data in orjson.loads(row[0])]
        if not records:
            raise DatasetError(f"{entry.key}: the catalog lists no files for this series")
        plan = plan_series(entry.key, records, on_duplicate=on_duplicate)
        return assemble(plan)

    def _inputs(self) -> Inputs:
        """This catalog's file and scanned root, which no export may replace or sit in."""
        root = self.root
        return Inputs(inputs=[str(self.path)], input_folders=[root] if root else [])

    def write_json(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Export one object per series (plus patients and problems) as JSON, atomically."""
        from radpipe.io.atomic import atomic_path

        document = {
            "root": self.root,
            "patients": self.patients(),
            "series": [e.as_row() | {"warnings": list(e.warnings)} for e in self.series()],
            "problems": [{"location": loc, "reason": why} for loc, why in self.problems()],
        }
        with atomic_path(path, overwrite=overwrite, **self._inputs()) as temporary:
            temporary.write_text(json.dumps(document, indent=2))
        return Path(path)

    def write_csv(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Export one row per series as CSV, atomically."""
        from radpipe.io.atomic import atomic_path

        with (
            atomic_path(path, overwrite=overwrite, **self._inputs()) as temporary,
            open(temporary, "w", newline="") as handle,
        ):
            writer = csv.DictWriter(handle, fieldnames=EXPORT_COLUMNS)
            writer.writeheader()
            for entry in self.series():
                writer.writerow(entry.as_row())
        return Path(path)


def _series_entry(row: sqlite3.Row) -> SeriesEntry:
    shape = json.loads(row["shape"]) if row["shape"] else None
    spacing = (
        (row["spacing_slice"], row["spacing_row"], row["spacing_column"])
        if row["spacing_slice"] is not None
        else None
    )
    regular = row["slice_spacing_regular"]
    return SeriesEntry(
        key=row["key"],
        patient=row["patient"],
        study_uid=row["study_uid"],
        series_uid=row["series_uid"],
        modality=row["modality"],
        description=row["description"],
        role=row["role"],
        name=row["name"],
        layout=row["layout"],
        format=row["format"],
        shape=tuple(shape) if shape else None,
        spacing=spacing,
        orientation=row["orientation"],
        slice_spacing_regular=None if regular is None else bool(regular),
        gantry_tilt_deg=row["gantry_tilt_deg"] or 0.0,
        files=row["files"],
        first_location=row["first_location"],
        linked=row["linked"],
        warnings=tuple(json.loads(row["warnings"])),
        facts=json.loads(row["facts"]),
    )


def open_catalog(path: str | Path) -> Catalog:
    """Open a catalog written by :func:`scan` / ``radpipe scan``."""
    return Catalog(path)


def scan(
    root: str | Path,
    catalog_path: str | Path,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    keep_phi: bool = False,
    limits: ArchiveLimits | None = None,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> tuple[Catalog, ScanReport]:
    """Scan a folder tree (zip archives included) into a catalog, reading only what changed.

    Parameters
    ----------
    root : str or Path
        Folder, file or zip archive to scan.
    catalog_path : str or Path
        SQLite file to create or update. A catalog of another root, or made with another
        ``keep_phi`` choice, is rebuilt from scratch.
    workers : int, optional
        Local worker processes (all cores by default).
    scheduler : str, optional
        Dask scheduler address to describe files on a cluster.
    keep_phi : bool
        Keep real patient identifiers and dates instead of pseudonyms and shifted dates.
    limits : ArchiveLimits, optional
        Bounds on zip archives.

    Returns
    -------
    catalog : Catalog
    report : ScanReport
    """
    from radpipe.parallel import run_map
    from radpipe.privacy import pseudonym_key

    started = time.perf_counter()
    if not Path(root).exists():
        raise ReadError(f"{root}: no such file or folder")
    root_text = str(Path(root).resolve())
    target = Path(catalog_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    created = not target.exists()
    connection = sqlite3.connect(target)
    try:
        meta = _prepare(connection, root_text, keep_phi)
        own_files = {str(target.resolve()), f"{target.resolve()}-journal"}
        walk = _TreeWalk(root_text, limits or ArchiveLimits(), own_files)
        options = DescribeOptions(keep_phi=keep_phi, key=b"" if keep_phi else pseudonym_key())
        cached: dict[str, tuple[int, int]] = {}
        removed: list[str] = []
        jobs: Iterable[tuple[Source, DescribeOptions]]
        if connection.execute("SELECT 1 FROM files LIMIT 1").fetchone() is None:
            # nothing cached: the walk feeds the workers as it goes, so they describe the
            # first files while the parent still lists the rest
            jobs = ((source, options) for source in walk.stream(on_total))
            changed = walk.sources  # complete once the jobs are consumed, before any result
        else:
            # first the walk with archives unopened: when its fingerprint is the last scan's,
            # nothing changed and the catalog stands (a re-scan is this walk and one SQLite read)
            walk.walk_listing()
            if "built" in meta and meta.get("listing") == walk.digest() and "files" in meta:
                files = int(meta["files"])
                if on_total is not None:
                    on_total(files)
                if progress is not None:
                    progress(files)
                return Catalog(target), _report(connection, files, 0, 0, started)
            walk.expand()
            if on_total is not None:
                on_total(len(walk.sources))
            cached = _cached_files(connection)
            changed = [s for s in walk.sources if cached.get(s.location) != (s.size, s.mtime_ns)]
            present = {s.location for s in walk.sources}
            removed = [location for location in cached if location not in present]
            unchanged = (
                not changed and not removed and meta.get("walk_problems") == walk.problems_digest()
            )
            if unchanged and "built" in meta:
                with connection:
                    connection.executemany(
                        "INSERT OR REPLACE INTO meta VALUES (?, ?)", walk.meta_values()
                    )
                if progress is not None:
                    progress(len(walk.sources))
                return Catalog(target), _report(connection, len(walk.sources), 0, 0, started)
            jobs = [(source, options) for source in changed]
        described: list[FileEntry] = []
        with _collector_paused():
            for entry in run_map(describe, jobs, workers=workers, scheduler=scheduler):
                described.append(entry)
                if progress is not None:
                    progress(1)
        sources = walk.sources
        if progress is not None:
            progress(len(sources) - len(changed))
        # one transaction: the files, the series built from them and the 'built' mark commit
        # together, so an interrupted scan leaves the previous catalog and a re-run repairs it
        with connection:
            connection.executemany("DELETE FROM files WHERE location = ?", [(r,) for r in removed])
            fresh = {entry.location for entry in described}
            kept = len(cached) - len(removed) - sum(1 for s in changed if s.location in cached)
            entries = described + (
                [
                    _entry_from_row(row)
                    for row in connection.execute("SELECT * FROM files")
                    if row[0] not in fresh
                ]
                if kept > 0
                else []  # a first scan: every row is one just described
            )
            built = build_series(entries, root_text, keep_phi=keep_phi)
            built.problems.extend((p.location, p.reason) for p in walk.problems)
            _store(connection, built, described)
            connection.executemany(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                [("built", str(time.time())), *walk.meta_values()],
            )
        return Catalog(target), _report(
            connection, len(sources), len(changed), len(removed), started
        )
    except BaseException:
        connection.close()
        if created:  # a first scan that fails leaves no half-built catalog behind
            target.unlink(missing_ok=True)
        raise
    finally:
        connection.close()


def _store_files(
    connection: sqlite3.Connection, described: list[FileEntry], series_of: dict[str, str]
) -> None:
    """The rows of the files just described, each with its series, and the series of the
    files kept from the cache where it changed (one UPDATE per changed row, not per file)."""
    fresh = {entry.location for entry in described}
    stale = [
        (series_of.get(location), location)
        for location, key in connection.execute("SELECT location, series_key FROM files")
        if location not in fresh and series_of.get(location) != key
    ]
    connection.executemany("UPDATE files SET series_key = ? WHERE location = ?", stale)
    connection.executemany(
        "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                e.location,
                e.size,
                e.mtime_ns,
                e.kind,
                series_of.get(e.location),
                e.facts_json,
                e.records_json,
                e.problem,
            )
            for e in described
        ],
    )


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cycle collector while the workers' results arrive: tens of thousands of
    small acyclic objects otherwise trigger a full collection every few thousand files (about
    a tenth of the parent's time); reference counting frees them as before."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _database_name(connection: sqlite3.Connection) -> str:
    """The file behind a connection, for messages."""
    row = connection.execute("PRAGMA database_list").fetchone()
    return str(row[2]) if row and row[2] else "the catalog"


def _prepare(connection: sqlite3.Connection, root: str, keep_phi: bool) -> dict[str, str]:
    """Create the schema; reset it if the root or identifier policy changed; return the
    catalog's meta values."""
    try:
        tables = {
            str(row[0])
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        if tables and "meta" not in tables:
            raise DatasetError(
                f"{_database_name(connection)}: not a radpipe catalog (it holds the tables "
                f"{', '.join(sorted(tables)[:5])}); choose another --catalog file"
            )
        connection.executescript(SCHEMA)
        meta = dict(connection.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.DatabaseError as exc:
        raise DatasetError(
            f"{_database_name(connection)}: cannot use the catalog file ({exc}); choose another "
            "--catalog"
        ) from exc
    if meta and meta.get("schema_version") is None:
        raise DatasetError(
            f"{_database_name(connection)}: not a radpipe catalog; choose another --catalog file"
        )
    wanted = {"schema_version": SCHEMA_VERSION, "root": root, "keep_phi": str(keep_phi)}
    if any(meta.get(k) != v for k, v in wanted.items()):
        with connection:
            for table in ("files", "patients", "studies", "series", "problems", "meta"):
                connection.execute(f"DELETE FROM {table}")
            connection.executemany("INSERT INTO meta VALUES (?, ?)", list(wanted.items()))
        return dict(wanted)
    return meta


def _cached_files(connection: sqlite3.Connection) -> dict[str, tuple[int, int]]:
    """Size and modification time of every file the catalog describes."""
    rows = connection.execute("SELECT location, size, mtime_ns FROM files").fetchall()
    return {str(r[0]): (int(r[1]), int(r[2])) for r in rows}


class _TreeWalk:
    """The scan's walk of a tree: the listing with archives unopened (whose fingerprint tells
    an unchanged tree), then every file with archive members, and the problems met."""

    def __init__(self, root: str, limits: ArchiveLimits, excluded: set[str]) -> None:
        self.root, self.limits, self.excluded = root, limits, excluded
        self.listing: list[Source | Problem] = []
        self.sources: list[Source] = []
        self.problems: list[Problem] = []

    def walk_listing(self) -> None:
        """The walk with archives unopened."""
        self.listing = [
            item
            for item in walk_sources(self.root, limits=self.limits, open_archives=False)
            if not isinstance(item, Source) or item.location not in self.excluded
        ]

    def expand(self) -> None:
        """Every file of the listing, archive members in place of their archives."""
        for item in self.listing:
            self._add(item)

    def stream(self, on_total: Callable[[int], None] | None) -> Iterator[Source]:
        """Walk, list and expand at once, yielding each file as it is found; ``on_total``
        gets the count at the end."""
        for item in walk_sources(self.root, limits=self.limits, open_archives=False):
            if isinstance(item, Source) and item.location in self.excluded:
                continue
            self.listing.append(item)
            yield from self._add(item)
        if on_total is not None:
            on_total(len(self.sources))

    def _add(self, item: Source | Problem) -> list[Source]:
        members = (
            archive_sources(item, self.limits)
            if isinstance(item, Source) and is_archive(item)
            else (item,)
        )
        added = []
        for member in members:
            if isinstance(member, Source):
                self.sources.append(member)
                added.append(member)
            else:
                self.problems.append(member)
        return added

    def digest(self) -> str:
        """A fingerprint of the listing: every file's location, size and modification time,
        every problem, and the archive limits. Equal to the one stored at the last scan,
        nothing under the root changed (an archive's members change only with it)."""
        return _digest(self.listing, self.limits)

    def problems_digest(self) -> str:
        return _digest(self.problems, self.limits)

    def meta_values(self) -> list[tuple[str, str]]:
        """What the catalog's meta table keeps of this walk for the next scan."""
        return [
            ("listing", self.digest()),
            ("files", str(len(self.sources))),
            ("walk_problems", self.problems_digest()),
        ]


def _digest(items: Sequence[Source | Problem], limits: ArchiveLimits) -> str:
    lines = [
        f"{item.location}\t{item.size}\t{item.mtime_ns}"
        if isinstance(item, Source)
        else f"!{item.location}\t{item.reason}"
        for item in items
    ]
    lines.append(repr(limits))
    return hashlib.blake2b("\n".join(lines).encode(), digest_size=16).hexdigest()


def _entry_from_row(row: tuple[Any, ...]) -> FileEntry:
    location, size, mtime_ns, kind, _, facts, records, problem = row
    entry = FileEntry(
        location=location,
        size=size,
        mtime_ns=mtime_ns,
        kind=kind,
        problem=problem,
        facts_json=facts,
        records_json=records,
    )
    if kind in ("dicom-image", "dicom-seg", "dicom-rtstruct"):
        entry.sop_uid = entry.facts.get("sop_uid")
    return entry


def _store(connection: sqlite3.Connection, built: BuiltCatalog, described: list[FileEntry]) -> None:
    for table in ("patients", "studies", "series", "problems"):
        connection.execute(f"DELETE FROM {table}")
    _store_files(connection, described, built.file_series)
    connection.executemany(
        "INSERT INTO series VALUES (" + ", ".join("?" * 25) + ")",
        [_series_values(row) for row in built.series],
    )
    studies: dict[str, dict[str, Any]] = {}
    patients: dict[str, dict[str, Any]] = {}
    for row in built.series:
        patient = patients.setdefault(
            row.patient, {"studies": set(), "series": 0, "layouts": set()}
        )
        patient["series"] += 1
        patient["layouts"].add(row.layout)
        if row.study_uid:
            patient["studies"].add(row.study_uid)
            study = studies.setdefault(
                row.study_uid,
                {
                    "patient": row.patient,
                    "description": row.facts.get("study_description"),
                    "date": row.facts.get("study_date"),
                    "series": 0,
                },
            )
            study["series"] += 1
    connection.executemany(
        "INSERT INTO patients VALUES (?, ?, ?, ?)",
        [
            (name, len(p["studies"]), p["series"], ", ".join(sorted(p["layouts"])))
            for name, p in patients.items()
        ],
    )
    connection.executemany(
        "INSERT INTO studies VALUES (?, ?, ?, ?, ?)",
        [
            (uid, s["patient"], s["description"], s["date"], s["series"])
            for uid, s in studies.items()
        ],
    )
    connection.executemany("INSERT INTO problems VALUES (?, ?)", built.problems)


def _series_values(row: SeriesEntry) -> tuple[Any, ...]:
    shape: tuple[int, ...] = row.shape or ()
    spacing: list[float | None] = list(row.spacing) if row.spacing else [None, None, None]
    regular = None if row.slice_spacing_regular is None else int(row.slice_spacing_regular)
    return (
        row.key, row.patient, row.study_uid, row.series_uid, row.modality, row.description,
        row.role, row.name, row.layout, row.format, json.dumps(shape) if shape else None,
        shape[0] if len(shape) > 0 else None, shape[1] if len(shape) > 1 else None,
        shape[2] if len(shape) > 2 else None, spacing[0], spacing[1], spacing[2],
        row.orientation, regular,
        row.gantry_tilt_deg, row.files, row.first_location, row.linked,
        json.dumps(list(row.warnings)), json.dumps(row.facts),
    )  # fmt: skip


def _report(
    connection: sqlite3.Connection, files: int, read: int, removed: int, started: float
) -> ScanReport:
    def count(table: str) -> int:
        return int(connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    return ScanReport(
        files=files,
        read=read,
        removed=removed,
        series=count("series"),
        patients=count("patients"),
        problems=count("problems"),
        seconds=time.perf_counter() - started,
    )


def iter_problem_lines(catalog: Catalog) -> Iterator[str]:
    """Problems as printable lines."""
    for location, reason in catalog.problems():
        yield f"{location}: {reason}"
