"""Photos lose what identifies their photographer before they are sent; other files are
sent as they are and the user is told; a broken "photo" is refused, not sent unchecked."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageChops, PngImagePlugin

from crypto.attachment import MAX_FILE
from mesh.photo_metadata import MetadataError, prepare

SECRETS = (b"SN-9912", b"Aigerim", b"PhoneMaker", b"2022:01:05", b"Zhibek")


def _exif() -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneMaker"
    exif[ExifTags.Base.Model] = "X1"
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.DateTime] = "2022:01:05 18:30:00"
    exif[ExifTags.Base.Artist] = "Aigerim"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (43.0, 14.0, 9.0)
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.BodySerialNumber] = "SN-9912"
    return exif


def _chunk(body: bytes) -> bytes:
    """A PNG chunk: ``body`` is its type and data."""
    return struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))


def _image() -> Image.Image:
    im = Image.new("RGB", (96, 64))
    for x in range(96):
        for y in range(64):
            im.putpixel((x, y), (x * 2, y * 3, (x ^ y) & 255))
    return im


def test_a_jpeg_loses_gps_serial_dates_and_names_and_keeps_its_look(tmp_path: Path) -> None:
    out = io.BytesIO()
    _image().save(
        out,
        "JPEG",
        quality=90,
        exif=_exif().tobytes(),
        comment=b"by Zhibek",
        xmp=b"<x:xmpmeta>creator Aigerim</x:xmpmeta>",
        icc_profile=b"\x00" * 8,
    )
    path = tmp_path / "IMG_0001.jpg"
    path.write_bytes(out.getvalue())
    assert all(s in out.getvalue() for s in SECRETS)
    sent = prepare(path)
    assert sent.mime == "image/jpeg"
    for secret in SECRETS:
        assert secret not in sent.data, secret
    for what in ("GPS position", "camera serial number", "camera make and model"):
        assert what in sent.removed
    assert {"date and time", "artist", "XMP metadata", "comment"} <= set(sent.removed)
    assert sent.note.startswith("removed: GPS position")
    again = Image.open(io.BytesIO(sent.data))
    assert dict(again.getexif()) == {ExifTags.Base.Orientation: 6}  # still the right way up
    assert again.info.get("icc_profile") == b"\x00" * 8
    before = Image.open(io.BytesIO(out.getvalue())).convert("RGB")
    diff = ImageChops.difference(before, again.convert("RGB"))
    assert int(np.asarray(diff).max()) <= 12  # the same tables: no visible loss


def test_a_png_loses_its_text_exif_and_time_and_keeps_every_pixel(tmp_path: Path) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Aigerim")
    info.add_itxt("Comment", "from Zhibek's window")
    out = io.BytesIO()
    im = _image()
    im.save(out, "PNG", pnginfo=info, exif=_exif().tobytes())
    raw = out.getvalue()
    raw = raw[:33] + _chunk(b"tIME" + bytes([7, 230, 1, 5, 18, 30, 0])) + raw[33:]  # after IHDR
    path = tmp_path / "shot.png"
    path.write_bytes(raw)
    sent = prepare(path)
    assert sent.mime == "image/png"
    for secret in SECRETS:
        assert secret not in sent.data, secret
    assert b"tIME" not in sent.data
    assert b"eXIf" not in sent.data
    assert "text chunks (Author, Comment)" in sent.removed
    assert {"GPS position", "modification time"} <= set(sent.removed)
    back = Image.open(io.BytesIO(sent.data))
    assert ImageChops.difference(back.convert("RGB"), im).getbbox() is None  # lossless


def test_a_clean_photo_says_nothing_was_found(tmp_path: Path) -> None:
    path = tmp_path / "plain.png"
    _image().save(path, "PNG")
    sent = prepare(path)
    assert (sent.removed, sent.note) == ((), "no identifying metadata found")


def test_other_files_are_sent_as_they_are_and_the_user_is_told(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"Aigerim was here")
    sent = prepare(path)
    assert sent.data == b"Aigerim was here"
    assert sent.note == "not a JPEG or PNG: sent as it is, its metadata was not checked"


def test_a_broken_photo_is_refused_not_sent_unchecked(tmp_path: Path) -> None:
    path = tmp_path / "fake.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe1" + b"GPS Aigerim" * 50)
    with pytest.raises(MetadataError, match="looks like a JPEG but cannot be read"):
        prepare(path)
    bomb = tmp_path / "bomb.png"  # a header claiming 60000 x 60000 pixels
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(ihdr) + _chunk(b"IDAT" + zlib.compress(b"")))
    with pytest.raises(MetadataError, match="too many pixels"):
        prepare(bomb)


def test_size_bounds_and_unreadable_files_are_one_line(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    with big.open("wb") as f:
        f.truncate(MAX_FILE + 1)
    with pytest.raises(MetadataError, match="files are at most 10 MiB"):
        prepare(big)
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(MetadataError, match="is empty"):
        prepare(tmp_path / "empty")
    with pytest.raises(MetadataError, match="No such file"):
        prepare(tmp_path / "missing.jpg")


def test_an_iptc_record_is_removed_and_named(tmp_path: Path) -> None:
    """An APP13 segment (IPTC: by-line, city) right after the start of the image."""
    out = io.BytesIO()
    _image().save(out, "JPEG", quality=90)
    body = b"\x1c\x02\x50byline: Aigerim, city: Almaty" * 4  # raw IPTC, no Photoshop header
    app13 = b"\xff\xed" + (len(body) + 2).to_bytes(2, "big") + body
    raw = out.getvalue()
    path = tmp_path / "press.jpg"
    path.write_bytes(raw[:2] + app13 + raw[2:])
    sent = prepare(path)
    assert "IPTC and Photoshop records" in sent.removed
    assert b"Aigerim" not in sent.data
