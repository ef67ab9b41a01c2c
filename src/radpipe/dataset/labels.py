"""The label table of a dataset: one fixed mapping of mask names to integers for the whole
file, merge rules for numbered structures, and painting a patient's named masks with it."""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from radpipe.errors import DatasetError
from radpipe.masks import is_tumour

#: Masks are stored as uint8: label values 1 … 255.
MAX_LABEL = 255

_TRAILING_NUMBER = re.compile(r"^(?P<stem>.*?\D)[\s_\-.]*\d+$")


@dataclass(frozen=True)
class MergeRule:
    """Mask names matching ``pattern`` (shell-style, case-insensitive) become ``name``."""

    pattern: str
    name: str

    def matches(self, mask_name: str) -> bool:
        """Whether ``mask_name`` falls under this rule."""
        return fnmatch.fnmatchcase(mask_name.lower(), self.pattern.lower())


def parse_merge_rules(texts: Iterable[str]) -> list[MergeRule]:
    """Rules from ``PATTERN=NAME`` texts, each possibly several separated by commas.

    Raises
    ------
    DatasetError
        For a rule without ``=``, an empty pattern or an empty name.

    Examples
    --------
    >>> parse_merge_rules(["livertumor*=tumor", "artery*=vessel,portalvein*=vessel"])[0]
    MergeRule(pattern='livertumor*', name='tumor')
    """
    rules = []
    for text in texts:
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            pattern, sep, name = part.partition("=")
            if not sep or not pattern.strip() or not name.strip():
                raise DatasetError(
                    f"--merge {part!r}: write PATTERN=NAME, e.g. --merge 'livertumor*=tumor'"
                )
            rules.append(MergeRule(pattern.strip(), name.strip()))
    return rules


def merged_name(name: str, rules: Iterable[MergeRule] = (), *, keep_numbered: bool = False) -> str:
    """The class a mask belongs to: the first matching rule's name; otherwise a numbered
    tumour (``livertumor01``, ``GTV-2``) loses its number unless ``keep_numbered``.

    Examples
    --------
    >>> merged_name("livertumor03"), merged_name("GTV-1"), merged_name("portalvein1")
    ('livertumor', 'GTV', 'portalvein1')
    >>> merged_name("livertumor03", [MergeRule("livertumor*", "tumor")])
    'tumor'
    """
    for rule in rules:
        if rule.matches(name):
            return rule.name
    if not keep_numbered and is_tumour(name):
        found = _TRAILING_NUMBER.match(name)
        if found:
            return found.group("stem").rstrip(" _-.")
    return name


def parse_label_table(text: str) -> dict[int, str]:
    """A table from ``liver=1,tumor=2`` text or a JSON file (``{"liver": 1}``, ``{"1": "liver"}``).

    Raises
    ------
    DatasetError
        For a malformed entry, a value outside 1 … 255, or a name or value given twice.

    Examples
    --------
    >>> parse_label_table("liver=1,tumor=2")
    {1: 'liver', 2: 'tumor'}
    """
    source = Path(text)
    pairs: list[tuple[str, object]]
    if text.lower().endswith(".json"):
        try:
            document = json.loads(source.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DatasetError(f"{source}: cannot read the label table ({exc})") from None
        if not isinstance(document, dict) or not document:
            raise DatasetError(f'{source}: the label table must be a JSON object {{"liver": 1}}')
        pairs = []
        for key, value in document.items():
            # either {"liver": 1} or {"1": "liver"}
            pairs.append((str(value), key) if isinstance(value, str) else (str(key), value))
        where = str(source)
    else:
        pairs = []
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            name, sep, value = part.partition("=")
            if not sep:
                raise DatasetError(f"--labels {part!r}: write NAME=VALUE, e.g. liver=1,tumor=2")
            pairs.append((name.strip(), value.strip()))
        where = f"--labels {text!r}"
    table: dict[int, str] = {}
    for name, value in pairs:
        try:
            number = int(str(value))
        except ValueError:
            raise DatasetError(
                f"{where}: label {name!r} has value {value!r}, not an integer"
            ) from None
        if not name:
            raise DatasetError(f"{where}: label {number} has no name")
        if not 1 <= number <= MAX_LABEL:
            raise DatasetError(
                f"{where}: label {name!r} = {number}; values must be 1 … {MAX_LABEL} "
                "(0 is the background)"
            )
        if number in table:
            raise DatasetError(
                f"{where}: value {number} is given to {table[number]!r} and {name!r}"
            )
        if name in table.values():
            raise DatasetError(f"{where}: the name {name!r} is given two values")
        table[number] = name
    if not table:
        raise DatasetError(f"{where}: no label given")
    return dict(sorted(table.items()))


def derive_label_table(names: Iterable[str]) -> dict[int, str]:
    """Labels 1, 2, … for the distinct names in sorted order (the same table whatever the
    order patients come in).

    Raises
    ------
    DatasetError
        For more than 255 distinct names.

    Examples
    --------
    >>> derive_label_table(["spleen", "liver", "tumor", "liver"])
    {1: 'liver', 2: 'spleen', 3: 'tumor'}
    """
    distinct = sorted(set(names))
    if len(distinct) > MAX_LABEL:
        raise DatasetError(
            f"{len(distinct)} distinct mask names; a dataset holds at most {MAX_LABEL} labels: "
            "merge some with --merge 'PATTERN=NAME' or give --labels"
        )
    return {number: name for number, name in enumerate(distinct, start=1)}


def merge_masks(
    masks: Mapping[str, NDArray[np.bool_]],
    rules: Iterable[MergeRule] = (),
    *,
    keep_numbered: bool = False,
) -> dict[str, NDArray[np.bool_]]:
    """Masks of one patient combined by class (the union of every mask merged into it)."""
    chosen = list(rules)
    merged: dict[str, NDArray[np.bool_]] = {}
    for name, mask in masks.items():
        target = merged_name(name, chosen, keep_numbered=keep_numbered)
        merged[target] = merged[target] | mask if target in merged else mask.copy()
    return merged


def paint_labels(
    masks: Mapping[str, NDArray[np.bool_]], table: Mapping[str, int]
) -> NDArray[np.uint8]:
    """One (S, R, C) uint8 label array: organs painted first, tumours last (a tumour inside an
    organ keeps its own label), each class with its value in ``table``; classes not in the
    table are left out (background)."""
    shape = next(iter(masks.values())).shape
    labels = np.zeros(shape, dtype=np.uint8)
    painted = sorted((n for n in masks if n in table), key=lambda n: (is_tumour(n), n))
    for name in painted:
        labels[masks[name]] = table[name]
    return labels


def relabel(labels: NDArray[np.uint8], lookup: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """``labels`` with every value v replaced by ``lookup[v]``."""
    return np.take(lookup, labels)


def lookup_between(local: Mapping[int, str], table: Mapping[str, int]) -> NDArray[np.uint8]:
    """The (256,) uint8 lookup from a patient's own numbering to the dataset's table."""
    lookup = np.zeros(MAX_LABEL + 1, dtype=np.uint8)
    for value, name in local.items():
        lookup[value] = table.get(name, 0)
    return lookup


def table_text(table: Mapping[int, str]) -> str:
    """``{liver=1, tumor=2}``: a table as messages show it."""
    return "{" + ", ".join(f"{name}={value}" for value, name in sorted(table.items())) + "}"
