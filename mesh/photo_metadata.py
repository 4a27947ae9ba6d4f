"""What leaves with a file: identifying metadata stripped from photos before they are sent.

A photo taken with a phone says where it was taken (EXIF GPS), with which camera (make,
model, body and lens serial numbers, maker notes that often hold the serial again), when
(EXIF dates), and often by whom (artist, copyright, XMP and IPTC records, comments). In a
blackout that can identify the photographer to whoever receives or seizes the picture.
So before a JPEG or PNG is sent it is written again by Pillow with none of that:

- JPEG (and MPO, the multi-picture JPEG of many phones): the first image only, at the
  same quantisation tables and subsampling (``quality="keep"``, so no visible loss), with
  an EXIF block holding the orientation only (the picture still shows the right way up)
  and the colour profile kept (it describes colours, not the device: generic on phones).
  Removed: every other EXIF field, XMP, IPTC/Photoshop records, comments, embedded
  thumbnails and extra images.
- PNG: the same pixels (PNG is lossless), its transparency and colour profile kept;
  removed: text chunks (tEXt, zTXt, iTXt: author, software, creation time), EXIF (eXIf)
  and the modification time (tIME).

:func:`prepare` says what it removed, so the user is told. Any other file is sent as it
is, and the user is told its metadata was not checked (a HEIC photo, a PDF or a video
keeps everything it holds). A file that claims to be a JPEG or PNG but that Pillow cannot
read is refused rather than sent unchecked. What this does not remove: anything in the
pixels (a face, a street sign, a reflection), the file's name (shown to the user, who may
rename it), and sensor noise patterns that can link photos to one camera.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import ExifTags, Image, UnidentifiedImageError

from crypto.attachment import MAX_FILE

_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# EXIF fields by what they give away, the way the user is told.
_EXIF_NAMES: dict[int, str] = {
    ExifTags.Base.Make: "camera make and model",
    ExifTags.Base.Model: "camera make and model",
    ExifTags.Base.BodySerialNumber: "camera serial number",
    ExifTags.Base.CameraOwnerName: "camera owner's name",
    ExifTags.Base.LensSerialNumber: "lens serial number",
    ExifTags.Base.LensMake: "lens make and model",
    ExifTags.Base.LensModel: "lens make and model",
    ExifTags.Base.DateTime: "date and time",
    ExifTags.Base.DateTimeOriginal: "date and time",
    ExifTags.Base.DateTimeDigitized: "date and time",
    ExifTags.Base.Artist: "artist",
    ExifTags.Base.Copyright: "copyright",
    ExifTags.Base.Software: "software",
    ExifTags.Base.ImageUniqueID: "unique image id",
    ExifTags.Base.MakerNote: "maker notes",
    ExifTags.Base.UserComment: "comment",
}
_ORIENTATION = ExifTags.Base.Orientation
_POINTERS = {ExifTags.IFD.Exif, ExifTags.IFD.GPSInfo, ExifTags.IFD.Interop, _ORIENTATION}


class MetadataError(Exception):
    """One readable line: why a file cannot be sent."""


@dataclass(frozen=True, slots=True)
class OutgoingFile:
    name: str
    data: bytes
    mime: str
    removed: tuple[str, ...]  # what was stripped, as the user is told
    note: str  # one line for the user: what was done to the file


def prepare(path: Path) -> OutgoingFile:
    """Read a file to send (at most 10 MiB) and strip a photo's metadata."""
    data = _read(path)
    if data.startswith(_JPEG_MAGIC):
        out, removed = strip_jpeg(data, path.name)
        mime = "image/jpeg"
    elif data.startswith(_PNG_MAGIC):
        out, removed = strip_png(data, path.name)
        mime = "image/png"
    else:
        note = "not a JPEG or PNG: sent as it is, its metadata was not checked"
        return OutgoingFile(path.name, data, "application/octet-stream", (), note)
    if len(out) > MAX_FILE:
        raise MetadataError(f"{path.name} is over 10 MiB once its metadata is stripped")
    note = "removed: " + ", ".join(removed) if removed else "no identifying metadata found"
    return OutgoingFile(path.name, out, mime, tuple(removed), note)


def _read(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_FILE:
                raise MetadataError(f"{path.name} is {size:,} bytes: files are at most 10 MiB")
            data = f.read(MAX_FILE + 1)
    except OSError as exc:
        raise MetadataError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > MAX_FILE:
        raise MetadataError(f"{path.name} is over 10 MiB")
    if not data:
        raise MetadataError(f"{path.name} is empty")
    return data


def _open(data: bytes, name: str, kind: str) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            im.load()
    except UnidentifiedImageError:
        raise MetadataError(
            f"{name} looks like a {kind} but cannot be read: not sent, its metadata could "
            "not be checked"
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise MetadataError(
            f"{name} looks like a {kind} but cannot be read ({exc}): not sent, its metadata "
            "could not be checked"
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise MetadataError(f"{name} has too many pixels to be checked: not sent") from None
    return im


def _exif_removed(exif: Image.Exif) -> list[str]:
    removed: list[str] = []
    fields = {**dict(exif), **exif.get_ifd(ExifTags.IFD.Exif)}
    if exif.get_ifd(ExifTags.IFD.GPSInfo) or ExifTags.IFD.GPSInfo in fields:
        removed.append("GPS position")
    removed += [_EXIF_NAMES[t] for t in fields if t in _EXIF_NAMES]
    others = [t for t in fields if t not in _EXIF_NAMES and t not in _POINTERS]
    if others and set(others) != {_ORIENTATION}:
        removed.append("other EXIF fields")
    return removed


def _ordered(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def strip_jpeg(data: bytes, name: str) -> tuple[bytes, list[str]]:
    """A JPEG written again without its metadata, and what was removed."""
    im = _open(data, name, "JPEG")
    exif = im.getexif()
    removed = _exif_removed(exif)
    info: dict[Any, Any] = im.info
    if "xmp" in info or "XML:com.adobe.xmp" in info:
        removed.append("XMP metadata")
    if "photoshop" in info or any(name == "APP13" for name, _ in getattr(im, "applist", [])):
        removed.append("IPTC and Photoshop records")
    if info.get("comment"):
        removed.append("comment")
    if getattr(im, "n_frames", 1) > 1:
        removed.append("extra embedded images")
    keep = Image.Exif()
    if exif.get(_ORIENTATION):
        keep[_ORIENTATION] = exif[_ORIENTATION]
    out = io.BytesIO()
    options: dict[str, Any] = {"quality": "keep", "exif": keep.tobytes()}
    if info.get("icc_profile"):
        options["icc_profile"] = info["icc_profile"]
    if info.get("progressive") or info.get("progression"):
        options["progressive"] = True
    im.info = {}  # Pillow writes some of it again by default (the comment, XMP)
    im.save(out, "JPEG", **options)
    return out.getvalue(), _ordered(removed)


def strip_png(data: bytes, name: str) -> tuple[bytes, list[str]]:
    """A PNG written again with the same pixels and without its metadata."""
    im = _open(data, name, "PNG")
    removed: list[str] = []
    text: dict[str, str] = getattr(im, "text", {})
    if text:
        removed.append("text chunks (" + ", ".join(sorted(text)[:8]) + ")")
    exif = im.getexif()
    if len(exif):
        removed += _exif_removed(exif) or ["EXIF"]
    if "xmp" in im.info or "XML:com.adobe.xmp" in text:
        removed.append("XMP metadata")
    if _has_chunk(data, b"tIME"):
        removed.append("modification time")
    if getattr(im, "n_frames", 1) > 1:
        removed.append("animation frames after the first")
    options: dict[str, Any] = {}
    for key in ("transparency", "icc_profile"):
        if key in im.info:
            options[key] = im.info[key]
    out = io.BytesIO()
    im.info = {}
    im.save(out, "PNG", **options)
    return out.getvalue(), _ordered(removed)


def _has_chunk(png: bytes, kind: bytes) -> bool:
    pos = len(_PNG_MAGIC)
    while pos + 8 <= len(png):
        length = int.from_bytes(png[pos : pos + 4], "big")
        if png[pos + 4 : pos + 8] == kind:
            return True
        pos += 12 + length
    return False
