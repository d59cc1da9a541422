"""Grouping a batch by a key, for the column-wise counting of ingest."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def group_by(keys: list[K], items: Sequence[V]) -> dict[K, list[V]]:
    """``items`` grouped by their key (``keys[i]`` belongs to ``items[i]``), first seen first.

    A batch usually has one key only (one model or one version per workflow): that case
    costs one ``list.count`` instead of a dictionary operation per item.

    >>> group_by(["a", "b", "a"], [1, 2, 3])
    {'a': [1, 3], 'b': [2]}
    >>> group_by(["a", "a"], [1, 2])
    {'a': [1, 2]}
    """
    if not keys:
        return {}
    if keys.count(keys[0]) == len(keys):
        return {keys[0]: list(items)}
    groups: dict[K, list[V]] = {}
    for key, item in zip(keys, items, strict=True):
        groups.setdefault(key, []).append(item)
    return groups
