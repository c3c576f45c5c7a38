"""The OK/NG ground-truth library: a dataset of verdicts per product, with golden examples.

A library is a ``DatasetStore`` whose items carry a ``product`` and an annotation with an OK or
NG verdict. *Golden* items are the accepted OK references of a product (what a good part looks
like), e.g. for comparing a new part against, or for building a recipe's baseline. An item is
golden when it is marked so (``mark_golden``), its verdict is OK and that verdict's review state
is ``accepted``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from thermoscope.annotations import AnnotatedItem, Provenance, Review, ReviewState, VerdictLabel
from thermoscope.core import ThermalFrame, Verdict
from thermoscope.datasets.store import WORKING, AddResult, DatasetStore
from thermoscope.datasets.versions import DatasetError, ItemRecord
from thermoscope.storage.identity import content_id


class GroundTruthLibrary:
    """OK/NG examples per product on top of a dataset store.

    Queries take ``ref``: a version id, prefix or tag, or ``"working"`` (the default).
    """

    def __init__(self, store: DatasetStore) -> None:
        self.store = store

    def add_example(
        self,
        frames: ThermalFrame | Sequence[ThermalFrame],
        *,
        product: str,
        verdict: Literal["OK", "NG"],
        author: str,
        reason: str = "",
        accepted_by: str | None = None,
        golden: bool = False,
        **metadata: Any,
    ) -> AddResult:
        """Add a frame (or sequence) with a whole-item verdict.

        Args:
            frames: the radiometric data.
            product: the product it shows.
            verdict: ``"OK"`` or ``"NG"`` (NG needs a ``reason``).
            author: who decided the verdict.
            reason: why (required for NG).
            accepted_by: a reviewer who accepted the verdict (else it stays a draft).
            golden: mark it a golden example (needs an accepted OK verdict).
            **metadata: further item metadata (``serial``, ``source`` ...; see ``add``).

        Raises:
            DatasetError: ``golden`` without an accepted OK verdict, or as ``DatasetStore.add``.
        """
        items = [frames] if isinstance(frames, ThermalFrame) else list(frames)
        review = Review()
        if accepted_by is not None:
            review = Review(
                state=ReviewState.ACCEPTED, reviewer=accepted_by, updated=datetime.now(UTC)
            )
        label = VerdictLabel(
            verdict=Verdict(verdict),
            reason=reason,
            provenance=Provenance.human(author),
            review=review,
        )
        annotation = AnnotatedItem(
            item_id=content_id(items),
            width=items[0].width,
            height=items[0].height,
            frame_count=len(items),
            verdicts=(label,),
        )
        if golden and not (verdict == "OK" and accepted_by is not None):
            raise DatasetError("a golden example needs an OK verdict that a reviewer accepted")
        return self.store.add(
            items, annotation=annotation, golden=golden, product=product, **metadata
        )

    def mark_golden(self, item_id: str, golden: bool = True) -> ItemRecord:
        """Mark (or unmark) a working-state item as a golden example of its product.

        Raises:
            DatasetError: marking an item without a product or without an accepted OK verdict.
        """
        item = self.store.item(item_id)
        if golden and (item.product is None or not _accepted_ok(item)):
            raise DatasetError(
                f"item {item_id} cannot be golden: it needs a product and an accepted OK "
                f"verdict (has product {item.product!r}, verdict {item.verdict!r}, "
                f"review {item.review!r})"
            )
        return self.store.update(item_id, golden=golden)

    def products(self, ref: str = WORKING) -> list[str]:
        """Products with at least one item (sorted)."""
        return sorted({i.product for i in self.store.version(ref) if i.product is not None})

    def examples(
        self, product: str, *, verdict: Literal["OK", "NG"] | None = None, ref: str = WORKING
    ) -> list[ItemRecord]:
        """Items of ``product`` (with ``verdict`` when given), sorted by id."""
        return [
            item
            for item in self.store.version(ref)
            if item.product == product and (verdict is None or item.verdict == verdict)
        ]

    def golden(self, product: str, *, ref: str = WORKING) -> list[ItemRecord]:
        """The accepted OK reference items of ``product`` that are marked golden."""
        return [
            item
            for item in self.store.version(ref)
            if item.product == product and item.golden and _accepted_ok(item)
        ]


def _accepted_ok(item: ItemRecord) -> bool:
    return item.verdict == "OK" and item.review == ReviewState.ACCEPTED.value
