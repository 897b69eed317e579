"""``--where``: keep the images whose labels match, e.g. ``race=East Asian`` or ``age=20-29|30-39``.

Grammar (one expression, or several given as a list, e.g. repeated ``--where`` flags)::

    expression := condition ("," condition)*        all conditions must hold (AND)
    condition  := column "=" values | column "!=" values
    values     := value ("|" value)*                 any of the values (IN)

Spaces around names and values are ignored; values may contain spaces (``race=East Asian``).
Columns and values match exactly, else case-insensitively when that is unambiguous.

Conditions are checked against a label table as :func:`gankit.data.attributes.read_attribute_table`
reads it (a CSV with a file column, or CelebA's ``list_attr``): a categorical column ``race``
becomes the 0/1 columns ``race=White``, ``race=East Asian``, ... and ``race=East Asian`` keeps the
rows where that column is 1; a yes/no column (``Male`` with +1/-1, ``service_test`` with
TRUE/FALSE) is matched by truth value (``Male=1``, ``Male=-1``, ``service_test=false``). Data with
class labels and no table (class folders, ``mnist``) has one column, ``class``.

An unknown column or value raises :class:`~gankit.errors.GankitError` naming the close matches and
the known ones; so does a filter that keeps nothing.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import GankitError
from .dataset import Dataset

CLASS_COLUMN = "class"
_SHOWN = 12  # known values listed in an error


@dataclass(frozen=True)
class Condition:
    """``column = v1 | v2 ...`` (``negate``: ``!=``)."""

    column: str
    values: tuple[str, ...]
    negate: bool = False

    def __str__(self) -> str:
        return f"{self.column}{'!=' if self.negate else '='}{'|'.join(self.values)}"


def parse_where(where: str | Sequence[str] | Sequence[Condition] | None) -> list[Condition]:
    """Conditions of an expression (or a list of expressions, ANDed); [] for None or blanks.
    A malformed condition raises GankitError."""
    if where is None:
        return []
    items = [where] if isinstance(where, (str, Condition)) else list(where)
    out: list[Condition] = []
    for item in items:
        if isinstance(item, Condition):
            out.append(item)
            continue
        for part in str(item).split(","):
            if part.strip():
                out.append(_parse_condition(part.strip()))
    return out


def _parse_condition(text: str) -> Condition:
    negate = "!=" in text
    column, sep, rest = text.partition("!=" if negate else "=")
    column = column.strip()
    if not sep or not column:
        raise GankitError(f"--where {text!r}: expected column=value (or column!=value, column=a|b), "
                          f"e.g. \"race=East Asian\"")
    if rest.startswith("="):  # tolerate ==
        rest = rest[1:]
    values = tuple(v.strip() for v in rest.split("|"))
    if not all(values):
        raise GankitError(f"--where {text!r}: empty value after {column}{'!=' if negate else '='}")
    return Condition(column, values, negate)


def format_where(where: str | Sequence[str] | Sequence[Condition] | None) -> str:
    """The canonical text of an expression (``race=East Asian,age=20-29|30-39``)."""
    return ",".join(str(c) for c in parse_where(where))


def _known(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    return shown + (f", ... ({len(items)} in all)" if len(items) > _SHOWN else "")


def _pick(wanted: str, known: Sequence[str]) -> str | None:
    if wanted in known:
        return wanted
    same = [k for k in known if k.lower() == wanted.lower()]
    return same[0] if len(same) == 1 else None


def _suggest(wanted: str, known: Sequence[str]) -> str:
    lowered = {k.lower(): k for k in known}
    close = difflib.get_close_matches(wanted.lower(), list(lowered), n=3, cutoff=0.5)
    return f"did you mean {' or '.join(repr(lowered[c]) for c in close)}? " if close else ""


def _columns(names: Sequence[str]) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """Categorical columns (column -> value -> index of ``column=value``) and yes/no columns."""
    categorical: dict[str, dict[str, int]] = {}
    binary: dict[str, int] = {}
    for j, name in enumerate(names):
        column, sep, value = name.partition("=")
        if sep:
            categorical.setdefault(column, {})[value] = j
        else:
            binary[name] = j
    return categorical, binary


def resolve_where(names: Sequence[str], where, *, source: str = "the data") -> list[Condition]:
    """``where``'s conditions with their columns and values spelt as in the table (``race=east
    asian`` -> ``race=East Asian``); GankitError for an unknown column or value, naming the
    close matches and the known ones."""
    from .attributes import _binary, _natural_key

    categorical, binary = _columns(names)
    columns = list(dict.fromkeys([*categorical, *binary]))
    out: list[Condition] = []
    for cond in parse_where(where):
        column = _pick(cond.column, columns)
        if column is None:
            raise GankitError(f"--where: unknown column {cond.column!r} in {source}; "
                              f"{_suggest(cond.column, columns)}its columns: {_known(columns)}")
        values: list[str] = []
        for v in cond.values:
            if column in categorical:
                known = sorted(categorical[column], key=_natural_key)
                value = _pick(v, known)
                if value is None:
                    raise GankitError(f"--where: unknown value {v!r} for {column} in {source}; "
                                      f"{_suggest(v, known)}its values: {_known(known)}")
            else:
                truth = _binary(v)
                if truth is None:
                    raise GankitError(f"--where: {column} is a yes/no column in {source}; give {column}=1 or "
                                      f"{column}=0 (also true/false, +1/-1), not {v!r}")
                value = "1" if truth > 0.5 else "0"
            if value not in values:
                values.append(value)
        out.append(Condition(column, tuple(values), cond.negate))
    return out


def where_mask(names: Sequence[str], table: np.ndarray, where, *, source: str = "the data") -> np.ndarray:
    """Boolean mask ``(N,)`` of the rows of ``table`` (float ``(N, K)`` of 0/1, one column per
    attribute name in ``names``, as read by :func:`~gankit.data.attributes.read_attribute_table`)
    that satisfy ``where``. Unknown columns or values raise GankitError (:func:`resolve_where`)."""
    table = np.asarray(table).reshape(-1, len(names))
    categorical, binary = _columns(names)
    mask = np.ones(len(table), dtype=bool)
    for cond in resolve_where(names, where, source=source):
        hit = np.zeros(len(table), dtype=bool)
        for value in cond.values:
            if cond.column in categorical:
                hit |= table[:, categorical[cond.column][value]] > 0.5
            else:
                hit |= (table[:, binary[cond.column]] > 0.5) == (value == "1")
        mask &= ~hit if cond.negate else hit
    return mask


def filter_rows(names: Sequence[str], rows: dict[str, list[float]], where, *, source: str = "the label table"
                ) -> dict[str, list[float]]:
    """The rows of a label table (file -> values, as :func:`read_attribute_table` returns) that
    satisfy ``where``; GankitError when none does."""
    keys = list(rows)
    table = np.asarray([rows[k] for k in keys], dtype=np.float32).reshape(len(keys), len(names))
    mask = where_mask(names, table, where, source=source)
    if not mask.any():
        text = format_where(resolve_where(names, where, source=source))
        raise GankitError(f"--where {text}: no row of {source} matches (of {len(keys):,})")
    return {k: rows[k] for k, keep in zip(keys, mask) if keep}


def dataset_table(ds: Dataset) -> tuple[list[str], np.ndarray] | None:
    """The label columns of a loaded dataset: its ``attributes``, else its class labels as the
    column ``class``; None when it has neither."""
    if ds.attributes is not None and ds.attribute_names:
        return list(ds.attribute_names), ds.attributes.cpu().numpy()
    if ds.labels is not None and ds.num_classes:
        classes = list(ds.classes) if ds.classes is not None else [str(i) for i in range(ds.num_classes)]
        one_hot = np.eye(len(classes), dtype=np.float32)[ds.labels.cpu().numpy()]
        return [f"{CLASS_COLUMN}={c}" for c in classes], one_hot
    return None


def filter_dataset(ds: Dataset, where, *, max_images: int | None = None) -> Dataset:
    """The items of ``ds`` whose labels satisfy ``where`` (the first ``max_images`` of them when
    given), with ``Dataset.where`` set to the canonical expression. No conditions: ``ds`` as is."""
    conditions = parse_where(where)
    if not conditions:
        return ds
    source = ds.source or "the data"
    if ds.data_b is not None:
        raise GankitError(f"--where filters single-domain data; {source} has two domains")
    found = dataset_table(ds)
    if found is None:
        raise GankitError(f"--where needs labels: {source} has none (use fairface, class folders, or a folder "
                          f"with a labels.csv of file,column,... rows)")
    names, table = found
    mask = where_mask(names, table, conditions, source=source)
    text = format_where(resolve_where(names, conditions, source=source))
    if not mask.any():
        raise GankitError(f"--where {text}: no image of {source} matches (of {len(ds):,})")
    idx = torch.from_numpy(np.flatnonzero(mask))[:max_images]
    pick = lambda t: None if t is None else t[idx]  # noqa: E731
    return dataclasses.replace(ds, data=ds.data[idx], labels=pick(ds.labels), attributes=pick(ds.attributes),
                               where=text)
