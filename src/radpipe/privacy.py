"""Stable pseudonyms for patient identifiers, so that exports never carry the real ones."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import os
import secrets
from pathlib import Path

KEY_ENV = "RADPIPE_PSEUDONYM_KEY"


def _key_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "radpipe" / "pseudonym.key"


def pseudonym_key() -> bytes:
    """The secret that makes pseudonyms stable on this machine but unguessable elsewhere.

    Taken from ``$RADPIPE_PSEUDONYM_KEY`` when set (share it to get the same pseudonyms on
    several machines), else from ``~/.config/radpipe/pseudonym.key``, created on first use.
    """
    from_env = os.environ.get(KEY_ENV)
    if from_env:
        return from_env.encode()
    path = _key_file()
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode()
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key)
    os.replace(temporary, path)
    return path.read_bytes().strip()


def pseudonym(patient_id: str | None, *, key: bytes | None = None) -> str:
    """A stable pseudonym such as ``"anon-3f9c2a1b7d"`` for a patient identifier.

    Parameters
    ----------
    patient_id : str or None
        The real identifier; ``None`` or empty gives ``"anon-unknown"``.
    key : bytes, optional
        Secret for the keyed hash; :func:`pseudonym_key` when omitted.

    Examples
    --------
    >>> pseudonym("12345", key=b"k") == pseudonym("12345", key=b"k")
    True
    """
    if not patient_id:
        return "anon-unknown"
    digest = hmac.new(key or pseudonym_key(), patient_id.encode(), hashlib.sha256).hexdigest()
    return f"anon-{digest[:10]}"


def shift_days(patient_id: str | None, key: bytes) -> int:
    """Per-patient date shift in days (0–364) from a keyed hash; stable for a key."""
    digest = hmac.new(key, (patient_id or "").encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:4], "big") % 365


def shifted_date(value: str | None, days: int) -> str | None:
    """A DICOM date (YYYYMMDD) moved back by ``days``; None when absent or invalid."""
    if not value:
        return None
    try:
        date = datetime.date(int(value[0:4]), int(value[4:6]), int(value[6:8]))
    except ValueError:
        return None
    return (date - datetime.timedelta(days=days)).strftime("%Y%m%d")
