"""Sizes and external-ID lookups shared by everything that holds the two ID lists (dataset, catalogue)."""

from __future__ import annotations

from functools import cached_property


class IDMaps:
    """Mixin for a class with ``user_ids`` and ``item_ids`` (external IDs in index order)."""

    user_ids: list[str]
    item_ids: list[str]

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @cached_property
    def user_index(self) -> dict[str, int]:
        """External user ID -> row index."""
        return {u: i for i, u in enumerate(self.user_ids)}

    @cached_property
    def item_index(self) -> dict[str, int]:
        """External item ID -> column index."""
        return {v: j for j, v in enumerate(self.item_ids)}
