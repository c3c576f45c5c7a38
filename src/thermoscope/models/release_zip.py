"""A release folder as a zip: packing it deterministically and unpacking an untrusted one safely.

A release travels (upload to the server, download by an edge agent) as a zip of its folder:
``model.onnx``, ``manifest.json``, ``manifest.sig`` and extra files at the zip's root, or all in
one top-level folder (that folder is dropped when unpacking). ``unpack_release`` trusts nothing
in the zip: absolute names, ``..`` and backslashes are refused, at most ``MAX_MEMBERS`` files,
and the unpacked bytes are counted as they are read (a member's declared size may lie), so a
zip bomb stops at ``limit`` bytes. Every refusal is a ``ReleaseError`` naming the member (or
``the zip``) and the reason; checking the release itself is ``verify_release``'s work.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from thermoscope.models.errors import ReleaseError
from thermoscope.models.manifest import MANIFEST_FILE

#: Most files a release zip may hold.
MAX_MEMBERS = 256
#: What ``zipfile`` raises on a broken, encrypted or unsupported zip.
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    struct.error,
    EOFError,
    OSError,
    ValueError,
    NotImplementedError,
    RuntimeError,
)
#: The name errors are about when no member is to blame.
_ZIP = "the zip"


def pack_release(folder: Path) -> bytes:
    """A release folder as zip bytes: its files at the zip's root, sorted, with fixed
    timestamps and deflate level 6, so the same folder always gives the same bytes.

    Raises:
        ReleaseError: a file cannot be read.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as out:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(folder).as_posix(), (1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            try:
                out.writestr(info, path.read_bytes())
            except OSError as exc:
                raise ReleaseError(path, f"cannot be read ({exc.strerror})") from None
    return buffer.getvalue()


def unpack_release(data: bytes, folder: Path, *, limit: int) -> None:
    """Unpack a release zip's files into ``folder`` (created if missing; meant to be new and
    empty). On a refusal, files written so far stay: the caller removes ``folder``.

    Args:
        data: the zip's bytes.
        folder: where the release's files go.
        limit: most bytes all files together may unpack to.

    Raises:
        ReleaseError: not a zip, an unsafe name (absolute, ``..``, backslash), more than
            ``MAX_MEMBERS`` files, more than ``limit`` bytes, or a member that cannot be
            unpacked (corrupt, encrypted, unsupported compression).
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except _ZIP_ERRORS as exc:
        raise ReleaseError(_ZIP, f"not a zip of a release folder ({exc})") from None
    with archive:
        files = [m for m in archive.infolist() if not m.is_dir()]
        if len(files) > MAX_MEMBERS:
            raise ReleaseError(_ZIP, f"holds {len(files)} files, more than {MAX_MEMBERS}")
        if sum(m.file_size for m in files) > limit:
            raise ReleaseError(_ZIP, f"its files unpack to more than {limit} bytes")
        names = [_safe_name(m.filename) for m in files]
        strip = _top_folder(names)
        folder.mkdir(parents=True, exist_ok=True)
        left = limit  # counted as read: a declared size may lie
        for member, name in zip(files, names, strict=True):
            target = folder.joinpath(*name.parts[strip:])
            try:
                with archive.open(member) as source:
                    content = source.read(left + 1)
            except _ZIP_ERRORS as exc:
                raise ReleaseError(name.as_posix(), f"cannot be unpacked ({exc})") from None
            left -= len(content)
            if left < 0:
                raise ReleaseError(_ZIP, f"its files unpack to more than {limit} bytes")
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
            except OSError as exc:
                raise ReleaseError(name.as_posix(), f"cannot be written ({exc.strerror})") from None


def _safe_name(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or "\\" in name or not path.parts:
        raise ReleaseError(_ZIP, f"holds an unsafe file name {name!r}")
    return path


def _top_folder(names: Sequence[PurePosixPath]) -> int:
    """1 when every file lies in one top-level folder and the manifest is not at the root."""
    if any(n == PurePosixPath(MANIFEST_FILE) for n in names):
        return 0
    tops = {n.parts[0] for n in names if len(n.parts) > 1}
    return 1 if len(tops) == 1 and all(len(n.parts) > 1 for n in names) else 0


__all__ = ["MAX_MEMBERS", "pack_release", "unpack_release"]
