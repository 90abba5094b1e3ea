"""Evidence on a close: photos judged by their bytes, location metadata out; summons numbers."""

from __future__ import annotations

import pytest

from board.domain.evidence import (
    EvidenceError,
    _orientation,
    clean,
    sniff,
    strip_jpeg,
    summons_numbers,
)
from tests import photos
from tests.photos import GPS_MARK


def test_types_by_magic_number_not_by_name() -> None:
    assert sniff(photos.jpeg()) == "image/jpeg"
    assert sniff(photos.png()) == "image/png"
    assert sniff(photos.webp()) == "image/webp"
    assert sniff(photos.heic()) == "image/heic"
    for bad in (b"GIF89a....", b"%PDF-1.7", b"<svg xmlns=...>", b"MZ\x90\x00", b"hello.jpg"):
        assert sniff(bad) is None
        with pytest.raises(EvidenceError, match="not a photo"):
            clean(bad)


def test_jpeg_loses_its_gps_and_xmp_but_keeps_its_orientation() -> None:
    dirty = photos.jpeg(orientation=6)
    assert GPS_MARK in dirty
    kept = clean(dirty)
    assert kept.content_type == "image/jpeg"
    assert GPS_MARK not in kept.data and b"xmpmeta" not in kept.data
    assert b"http://ns.adobe.com/xap" not in kept.data
    assert kept.data.startswith(b"\xff\xd8\xff\xe0")  # JFIF stays first
    exif = kept.data.index(b"Exif\x00\x00")
    assert _orientation(kept.data[exif + 6:]) == 6
    assert kept.data.endswith(photos.jpeg(None)[-40:])  # tables, frame and scan untouched
    # upright photos keep no Exif at all; stripping twice changes nothing more
    upright = clean(photos.jpeg(orientation=1)).data
    assert b"Exif" not in upright and upright == photos.jpeg(None)
    assert strip_jpeg(kept.data) == kept.data


def test_png_and_webp_lose_their_metadata_chunks() -> None:
    p = clean(photos.png()).data
    assert GPS_MARK not in p and b"IHDR" in p and p.endswith(b"IEND\x00\x00\x00\x00")
    w = clean(photos.webp()).data
    assert GPS_MARK not in w and b"XMP " not in w and b"VP8 " in w
    assert int.from_bytes(w[4:8], "little") == len(w) - 8  # the RIFF size is mended
    assert w[20] & 0x0C == 0  # VP8X no longer claims EXIF or XMP


def test_heic_with_exif_is_refused_without_is_kept() -> None:
    with pytest.raises(EvidenceError, match="location metadata"):
        clean(photos.heic(exif=True))
    assert clean(photos.heic(exif=False)).content_type == "image/heic"


def test_size_and_damage() -> None:
    with pytest.raises(EvidenceError, match="at most 1 MB"):
        clean(photos.jpeg() + b"\x00" * (1024 * 1024), max_bytes=1024 * 1024)
    with pytest.raises(EvidenceError, match="empty"):
        clean(b"")
    with pytest.raises(EvidenceError, match="damaged"):
        clean(photos.jpeg()[:30])
    with pytest.raises(EvidenceError, match="damaged"):
        clean(photos.png()[:-6])


def test_summons_numbers() -> None:
    assert summons_numbers("1234567890, 2234567890\n1234567890") == ["1234567890", "2234567890"]
    assert summons_numbers("") == [] and summons_numbers([]) == []
    with pytest.raises(EvidenceError, match="'12345' is not a summons number"):
        summons_numbers("12345")
    with pytest.raises(EvidenceError, match="not a summons number"):
        summons_numbers(["123456789O"])  # a letter O
    assert summons_numbers("AB-123", r"[A-Z]{2}-\d{3}") == ["AB-123"]
