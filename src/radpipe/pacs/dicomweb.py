"""DICOMweb through dicomweb-client: QIDO-RS searches, WADO-RS retrieval (resumable, each
instance written whole) and STOW-RS storage, with the same results as the DIMSE functions."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from radpipe._optional import import_optional
from radpipe.errors import PacsError
from radpipe.pacs.dimse import RETURN_KEYS, Retrieval, Sending, read_instances
from radpipe.pacs.storage import instance_path, write_instance


def _client(url: str) -> Any:
    api = import_optional("dicomweb_client.api", extra="pacs")
    return api.DICOMwebClient(url=url.rstrip("/"))


def _call(url: str, what: str, function: Callable[[], Any]) -> Any:
    """Run a DICOMweb request; network and HTTP failures become one PacsError line."""
    import requests

    try:
        return function()
    except requests.exceptions.ConnectionError:
        raise PacsError(f"cannot reach {url} (no DICOMweb service answered)") from None
    except requests.exceptions.HTTPError as exc:
        code = exc.response.status_code if exc.response is not None else "?"
        raise PacsError(f"{url}: {what} failed with HTTP {code}") from None
    except requests.exceptions.RequestException as exc:
        raise PacsError(f"{url}: {what} failed ({type(exc).__name__})") from None
    except (ValueError, IndexError, KeyError) as exc:  # an answer that is not what was asked
        raise PacsError(f"{url}: {what} gave an unreadable answer ({exc})") from None


def _rows(url: str, found: list[dict[str, Any]]) -> list[dict[str, str]]:
    from pydicom.dataset import Dataset

    rows = []
    for item in found:
        try:
            dataset = Dataset.from_json(item)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise PacsError(f"{url}: a search answer is not DICOM JSON ({exc})") from None
        rows.append({
            element.keyword: str(element.value) for element in dataset
            if element.keyword and element.VR != "SQ"
        })  # fmt: skip
    return rows


def find(url: str, level: str = "study", **filters: str) -> list[dict[str, str]]:
    """QIDO-RS search at study, series or image level (``filters`` as DICOM keywords).

    Raises
    ------
    PacsError
        If the service cannot be reached or answers with an error.
    """
    client = _client(url)
    chosen = level.lower()
    if chosen not in ("study", "series", "image"):
        raise PacsError(f"level {level!r}: DICOMweb searches study, series or image")
    given = {k: v for k, v in filters.items() if v}
    study = given.pop("StudyInstanceUID", None)
    series = given.pop("SeriesInstanceUID", None)
    fields = list(RETURN_KEYS["IMAGE" if chosen == "image" else chosen.upper()])
    if chosen == "study":
        found = _call(url, "the study search", lambda: client.search_for_studies(
            search_filters={**given, **({"StudyInstanceUID": study} if study else {})},
            fields=fields, get_remaining=True))  # fmt: skip
    elif chosen == "series":
        found = _call(url, "the series search", lambda: client.search_for_series(
            study_instance_uid=study, search_filters={
                **given, **({"SeriesInstanceUID": series} if series else {})},
            fields=fields, get_remaining=True))  # fmt: skip
    else:
        found = _call(url, "the instance search", lambda: client.search_for_instances(
            study_instance_uid=study, series_instance_uid=series, search_filters=given,
            fields=fields, get_remaining=True))  # fmt: skip
    return _rows(url, found)


def get(
    url: str,
    uid: str,
    folder: str | Path,
    *,
    level: str = "study",
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> Retrieval:
    """WADO-RS retrieval of a study or series into ``folder``, only the instances not yet there.

    Raises
    ------
    PacsError
        Unreachable service, an unknown UID, or a transfer that stops part way (what arrived
        is kept; a second call fetches the rest).
    """
    import pydicom

    key = {"study": "StudyInstanceUID", "series": "SeriesInstanceUID"}.get(level.lower())
    if key is None:
        raise PacsError(f"level {level!r}: retrieve a study or a series")
    rows = find(url, "image", **{key: uid})
    instances = [
        (r["StudyInstanceUID"], r["SeriesInstanceUID"], r["SOPInstanceUID"])
        for r in rows if r.get("SOPInstanceUID") and r.get("StudyInstanceUID")
        and r.get("SeriesInstanceUID")
    ]  # fmt: skip
    if not instances:
        raise PacsError(f"{url} holds no {level} {uid}; look it up with `radpipe pacs find`")
    target = Path(folder)
    try:
        missing = [i for i in instances if not instance_path(target, *i).is_file()]
    except ValueError as exc:
        raise PacsError(f"{url} answered with {exc}; radpipe files instances by UID") from None
    result = Retrieval(target, len(instances), len(instances) - len(missing))
    if on_total is not None:
        on_total(len(missing))
    client = _client(url)
    for study, series, instance in missing:

        def fetch(s: str = study, e: str = series, i: str = instance) -> Any:
            return client.retrieve_instance(s, e, i)

        try:
            dataset = _call(url, f"retrieving {instance}", fetch)
        except PacsError as exc:
            have = result.already_present + len(result.received)
            raise PacsError(
                f"{exc}; {have} of {result.expected} instances are stored complete in {target} — "
                "run the same command again to fetch only the rest"
            ) from None
        buffer = io.BytesIO()
        pydicom.dcmwrite(buffer, dataset, enforce_file_format=True)
        result.received.append(write_instance(target, study, series, instance, buffer.getvalue()))
        if progress is not None:
            progress(1)
    return result


def send(
    url: str,
    sources: Iterable[str | Path],
    *,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> Sending:
    """STOW-RS every DICOM file under ``sources``, a few at a time.

    Raises
    ------
    PacsError
        Unreachable service, no DICOM file, or a refused request.
    """
    datasets = [dataset for _, dataset in read_instances(sources)]
    if on_total is not None:
        on_total(len(datasets))
    client = _client(url)
    result = Sending()
    for first in range(0, len(datasets), 16):
        group = datasets[first : first + 16]

        def store(g: list[Any] = group) -> Any:
            return client.store_instances(g)

        answer = _call(url, "storing instances", store)
        failed = answer.get("FailedSOPSequence", []) if answer is not None else []
        for item in failed:
            reason = item.get("FailureReason", "?")
            result.failed.append(f"{item.get('ReferencedSOPInstanceUID', '?')}: reason {reason}")
        result.sent += len(group) - len(failed)
        if progress is not None:
            progress(len(group))
    return result
