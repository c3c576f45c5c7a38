"""What every interchange format shares: errors, loss warnings, import reports and the pure
results of ``emit``. The rest of the shared parts lives beside it by responsibility:
``naming`` (file stems, item ids, frames grouped into sequences), ``values`` (numbers and
attribute values as text, label schemas), ``records`` (record conversions used by ``reduce`` and
``parse``) and ``files`` (image headers, side-cars, the atomic export folder, the ``save`` /
``load`` wrappers every format shares, and XML parsing that refuses DTDs).

Every format module has the same two layers:

- pure ``reduce(item, ...)`` (the item as the format keeps it, and ``LossWarning`` records for
  what it drops or changes), ``emit(items, ...) -> Export`` (the annotation files as bytes, by
  relative path) and ``parse(files, ...) -> ImportResult``; ``parse(emit(items).files)`` gives
  ``reduce(item)`` for every item, which is the round-trip contract the tests check;
- thin ``save(items, folder, ...)`` (writes the export folder atomically, with a rendered 8-bit
  PNG per frame and a float32 °C side-car when frames are given) and ``load(path, ...)``.

Frame files: each frame of an item becomes one image named by ``frame_stem``: the item id
(percent-quoted beyond ``A-Z a-z 0-9 . _ -``) for a single-frame item, ``<id>@<frame:06d>`` for
the frames of a sequence; importers group ``<id>@NNNNNN`` stems back into sequences when their
frames run 0..n-1 without gaps. The radiometric side-car of a frame is
``radiometric/<stem>.tiff`` (or ``.npy``) at the export's root, float32 °C written and read with
``thermoscope.io``.

Imported records get ids the format kept, or positional ones (``a0, a1, ...`` for annotations,
``t0 ...`` for tracks, ``v0 ...`` for verdicts), and the provenance of ``ImportDefaults``: a
person (``author``) unless the format marks the record as machine-made, then a model
(``model``, with the score where the format keeps one). Reviews come back as drafts.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from thermoscope.annotations.errors import AnnotationError
from thermoscope.annotations.item import AnnotatedItem
from thermoscope.annotations.model import Provenance
from thermoscope.annotations.schema import (
    LabelSchema,
)
from thermoscope.core import ThermalFrame, ThermoscopeError

T = TypeVar("T")

#: Folder of the radiometric side-cars at the root of every export.
SIDECAR_DIR = "radiometric"
#: Side-car file types: float32 °C TIFF (with thermoscope's metadata) or NumPy ``.npy``.
SidecarKind = Literal["tiff", "npy"]
#: How many record paths a ``LossWarning`` quotes as examples.
MAX_EXAMPLES = 3
#: The id an imported record has until it gets its positional one (``renamed``).
PENDING = "pending"
#: Labels CVAT and Label Studio exports use for frame verdicts (reserved in label schemas).
VERDICT_LABELS = ("OK", "NG")

FrameSource = Mapping[str, Sequence[ThermalFrame]] | Callable[[str], Sequence[ThermalFrame]]


class AnnotationFormatError(ThermoscopeError, ValueError):
    """An annotation file cannot be read or written.

    The message names the file and the item at fault, e.g.
    ``instances.json: annotations[17]: bbox extends outside image 3 (640x512)``.

    Attributes:
        file: the file (relative to the export, or as given); empty when not about a file.
        item: the entry within the file (``annotations[17]``, ``image 'a.png'``); may be empty.
        detail: what is wrong.
    """

    def __init__(self, detail: str, *, file: str = "", item: str = "") -> None:
        self.file = file
        self.item = item
        self.detail = detail
        super().__init__(": ".join(part for part in (file, item, detail) if part))


@dataclass(frozen=True, slots=True)
class LossWarning:
    """Something an export cannot hold, summed over every record it concerns.

    Attributes:
        format: the format's name (``"voc"``).
        kind: a short code (``"polygon"``, ``"provenance"``, ``"track"``, ``"verdict"`` ...).
        message: what is dropped or changed, for people.
        count: how many records it concerns.
        examples: the first few of them (``"item 'a1': annotations[3]"``).
    """

    format: str
    kind: str
    message: str
    count: int
    examples: tuple[str, ...]

    def __str__(self) -> str:
        where = ", ".join(self.examples)
        more = (
            f" and {self.count - len(self.examples)} more"
            if self.count > len(self.examples)
            else ""
        )
        return f"{self.format}: {self.message} ({self.count}: {where}{more})"


class AnnotationLossError(AnnotationFormatError):
    """A strict export would lose something (``warnings`` says what); nothing was written."""

    def __init__(self, warnings: Sequence[LossWarning], *, file: str = "") -> None:
        self.warnings = tuple(warnings)
        lines = "; ".join(str(w) for w in self.warnings)
        super().__init__(f"the export would lose information: {lines}", file=file)


class Losses:
    """Collects what ``reduce`` drops, grouped by kind (one ``LossWarning`` each)."""

    def __init__(self, format_name: str) -> None:
        self.format = format_name
        self._messages: dict[str, str] = {}
        self._counts: dict[str, int] = defaultdict(int)
        self._examples: dict[str, list[str]] = defaultdict(list)

    def add(self, kind: str, message: str, where: str) -> None:
        """Record one record (``where``) that loses ``kind`` (described by ``message``)."""
        count = self._counts.get(kind, 0)
        if not count:
            self._messages[kind] = message
        self._counts[kind] = count + 1
        if count < MAX_EXAMPLES:
            self._examples[kind].append(where)

    def warnings(self) -> list[LossWarning]:
        """One warning per kind, in the order the kinds first occurred."""
        return [
            LossWarning(self.format, k, m, self._counts[k], tuple(self._examples[k]))
            for k, m in self._messages.items()
        ]


@dataclass(frozen=True, slots=True)
class Skipped:
    """An entry an import with ``skip_invalid=True`` left out, and why."""

    file: str
    item: str
    reason: str

    def __str__(self) -> str:
        return ": ".join(part for part in (self.file, self.item, self.reason) if part)


class Problems:
    """Invalid entries met while parsing: raised at once, or recorded with ``skip_invalid``."""

    def __init__(self, skip_invalid: bool) -> None:
        self.skip_invalid = skip_invalid
        self.skipped: list[Skipped] = []

    def fail(self, file: str, item: str, detail: str) -> None:
        """Raise ``AnnotationFormatError`` (or record it when skipping invalid entries)."""
        if not self.skip_invalid:
            raise AnnotationFormatError(detail, file=file, item=item)
        self.skipped.append(Skipped(file, item, detail))

    def attempt(
        self, file: str, item: str | Callable[[], str], build: Callable[..., T], *args: Any
    ) -> T | None:
        """``build(*args)``, or ``None`` after ``fail`` when it raises ``AnnotationError`` (or
        a ``ValueError``, ``TypeError``, ``KeyError`` or ``IndexError`` from malformed input).
        ``item`` may be a function that names the entry, called only on failure (for loops
        over tens of thousands of entries)."""
        try:
            return build(*args)
        except AnnotationFormatError:
            raise
        except (AnnotationError, ValueError, TypeError, KeyError, IndexError) as exc:
            self.fail(file, item if isinstance(item, str) else item(), _describe(exc))
            return None


def _describe(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing {exc}"
    return str(exc) or type(exc).__name__


def _now() -> datetime:
    return datetime.now(UTC)


@functools.lru_cache(maxsize=16)
def _human(author: str, created: datetime) -> Provenance:
    return Provenance(author=author, created=created)


@dataclass(frozen=True, slots=True)
class ImportDefaults:
    """Provenance for imported records that their format does not keep.

    Attributes:
        author: the person credited with records the format marks as made by hand (or not
            marked at all).
        model: the model credited with records the format marks as machine-made, when the
            format does not name one.
        created: their creation time (default: the time of the import).
    """

    author: str = "import"
    model: str = "import"
    created: datetime = field(default_factory=_now)

    def human(self) -> Provenance:
        """The provenance of a hand-made record (one shared, immutable instance)."""
        return _human(self.author, self.created)

    def machine(
        self, *, score: float | None = None, model: str = "", version: str = ""
    ) -> Provenance:
        """The provenance of a machine-made record (``model`` defaults to ``self.model``)."""
        return Provenance(
            model=model or self.model, model_version=version, score=score, created=self.created
        )


@dataclass(slots=True)
class ImportResult:
    """What an import read.

    Attributes:
        items: the annotated items, in the order they first appear.
        schema: the schema given to the import, or one built from the file's own label list
            (and attribute declarations where the format has them).
        skipped: entries left out by ``skip_invalid=True`` (empty otherwise).
        notes: conversions made on the way in (e.g. a multi-part COCO polygon split in parts).
        frames: by item id, the radiometric side-car of each frame (``load`` only; items
            without a complete set of side-cars are absent).
    """

    items: list[AnnotatedItem]
    schema: LabelSchema
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    frames: dict[str, list[Path]] = field(default_factory=dict)

    def load_frames(self, item_id: str) -> list[ThermalFrame]:
        """The radiometric frames of ``item_id`` from its side-cars (°C, via ``thermoscope.io``).

        Raises:
            AnnotationFormatError: the item has no side-cars, or one does not fit its size.
        """
        from thermoscope import io as tio

        paths = self.frames.get(item_id)
        if not paths:
            raise AnnotationFormatError("no radiometric side-cars", item=f"item {item_id!r}")
        item = next(i for i in self.items if i.item_id == item_id)
        out = []
        for path in paths:
            frame = tio.load(path)
            if frame.shape != (item.height, item.width):
                raise AnnotationFormatError(
                    f"side-car is {frame.width}x{frame.height}, the item is "
                    f"{item.width}x{item.height}",
                    file=path.name,
                    item=f"item {item_id!r}",
                )
            out.append(frame)
        return out


@dataclass(frozen=True, slots=True)
class FrameFile:
    """Where ``save`` puts the image of one frame: ``image`` is relative to the export root."""

    item_id: str
    frame: int
    image: str


@dataclass(slots=True)
class Export:
    """The pure result of ``emit``.

    Attributes:
        files: annotation files by path relative to the export root (``/`` separated).
        warnings: what the export does not hold.
        images: the image path of every frame, which ``save`` fills with a rendering.
    """

    files: dict[str, bytes]
    warnings: list[LossWarning]
    images: list[FrameFile]


@dataclass(frozen=True, slots=True)
class ExportReport:
    """What ``save`` wrote: the export folder, its files (relative paths) and the warnings."""

    path: Path
    files: tuple[str, ...]
    warnings: tuple[LossWarning, ...]
