"""Evidence on a close: the officer's photos and the summons numbers. Pure rules, no I/O.

A photo is judged by its bytes, never its name or the type the phone claims: JPEG, PNG, WebP
or HEIC by their magic numbers, within a size limit. Location metadata is taken out on the way
in: a JPEG loses its APP1 (Exif, XMP) and APP13 (IPTC) segments, keeping only the Exif
orientation (so the picture stays the right way up); a PNG loses its eXIf and text chunks;
a WebP its EXIF and XMP chunks. A HEIC file carrying Exif or XMP items is refused: taking
those out means rewriting the file's item locations, which this module does not attempt.

A summons number must match the department's pattern (SUMMONS_PATTERN, by default ten
digits); whether it is already used on another job is the database's to say.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass

MAX_BYTES = 8 * 1024 * 1024  # a phone camera's JPEG is 2–6 MB
MAX_PHOTOS = 4
MAX_SUMMONSES = 20
DEFAULT_SUMMONS_PATTERN = r"\d{10}"


class EvidenceError(ValueError):
    """A photo or a summons number the board will not take, and why (said to the officer)."""


@dataclass(frozen=True)
class Photo:
    content_type: str
    data: bytes


def sniff(data: bytes) -> str | None:
    """The image type by its magic number, or None."""
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp" and data[8:12] in (b"heic", b"heix", b"heim", b"heis", b"mif1",
                                               b"msf1", b"hevc", b"hevx"):
        return "image/heic"
    return None


def clean(data: bytes, max_bytes: int = MAX_BYTES) -> Photo:
    """The photo as it will be kept, or EvidenceError saying why not."""
    if not data:
        raise EvidenceError("the photo is empty")
    if len(data) > max_bytes:
        raise EvidenceError(f"a photo may be at most {max_bytes // (1024 * 1024)} MB")
    kind = sniff(data)
    if kind is None:
        raise EvidenceError("not a photo: send a JPEG, PNG, WebP or HEIC picture")
    strip = {"image/jpeg": strip_jpeg, "image/png": strip_png, "image/webp": strip_webp,
             "image/heic": check_heic}[kind]
    return Photo(kind, strip(data))


# -- JPEG -------------------------------------------------------------------------------------

_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM, RST0-7: markers without a length
_DROP = {0xE1, 0xED}  # APP1 (Exif, XMP), APP13 (IPTC / Photoshop)


def strip_jpeg(data: bytes) -> bytes:
    """The JPEG without its APP1 and APP13 segments (a minimal Exif keeps the orientation).

    Walks the marker segments up to the start of scan; the entropy-coded data after it is
    copied as it is (no metadata lives there).
    """
    out = [b"\xff\xd8"]
    orientation = None
    i = 2
    while True:
        if i + 4 > len(data) or data[i] != 0xFF:
            raise EvidenceError("the JPEG is damaged (a segment is cut short)")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _STANDALONE:
            out.append(data[i:i + 2])
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2:i + 4])
        end = i + 2 + length
        if length < 2 or end > len(data):
            raise EvidenceError("the JPEG is damaged (a segment is cut short)")
        if marker == 0xDA:  # start of scan: the image data follows, to the end
            out.append(data[i:])
            break
        if marker == 0xD9:
            raise EvidenceError("the JPEG has no image data")
        if marker in _DROP:
            if marker == 0xE1 and data[i + 4:i + 10] == b"Exif\x00\x00":
                orientation = orientation or _orientation(data[i + 10:end])
        else:
            out.append(data[i:end])
        i = end
    if orientation and orientation != 1:  # after JFIF's APP0, which must come first
        at = 2 if len(out) > 1 and out[1][:2] == b"\xff\xe0" else 1
        out.insert(at, _exif_orientation(orientation))
    return b"".join(out)


def _orientation(tiff: bytes) -> int | None:
    """The Exif orientation (tag 0x0112 of IFD0) of a TIFF block, or None."""
    try:
        order = {b"II": "<", b"MM": ">"}[tiff[:2]]
        (ifd,) = struct.unpack(order + "I", tiff[4:8])
        (count,) = struct.unpack(order + "H", tiff[ifd:ifd + 2])
        for k in range(min(count, 512)):
            at = ifd + 2 + 12 * k
            tag, kind = struct.unpack(order + "HH", tiff[at:at + 4])
            if tag == 0x0112 and kind == 3:
                (value,) = struct.unpack(order + "H", tiff[at + 8:at + 10])
                return value if 1 <= value <= 8 else None
    except (KeyError, struct.error):
        return None
    return None


def _exif_orientation(value: int) -> bytes:
    """An APP1 segment whose Exif holds the orientation and nothing else."""
    tiff = (b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", 1)
            + struct.pack(">HHIHH", 0x0112, 3, 1, value, 0) + struct.pack(">I", 0))
    body = b"Exif\x00\x00" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body


# -- PNG --------------------------------------------------------------------------------------

_PNG_DROP = {b"eXIf", b"tEXt", b"zTXt", b"iTXt", b"tIME"}


def strip_png(data: bytes) -> bytes:
    """The PNG without its Exif and text chunks (XMP travels in iTXt)."""
    out = [data[:8]]
    i = 8
    while i < len(data):
        if i + 12 > len(data):
            raise EvidenceError("the PNG is damaged (a chunk is cut short)")
        (length,) = struct.unpack(">I", data[i:i + 4])
        kind = data[i + 4:i + 8]
        end = i + 12 + length
        if end > len(data):
            raise EvidenceError("the PNG is damaged (a chunk is cut short)")
        if kind not in _PNG_DROP:
            out.append(data[i:end])
        i = end
        if kind == b"IEND":
            break
    return b"".join(out)


# -- WebP -------------------------------------------------------------------------------------


def strip_webp(data: bytes) -> bytes:
    """The WebP without its EXIF and XMP chunks (and their flags in VP8X)."""
    chunks = []
    i = 12
    while i < len(data):
        if i + 8 > len(data):
            raise EvidenceError("the WebP is damaged (a chunk is cut short)")
        kind = data[i:i + 4]
        (length,) = struct.unpack("<I", data[i + 4:i + 8])
        end = i + 8 + length + (length & 1)
        if i + 8 + length > len(data):
            raise EvidenceError("the WebP is damaged (a chunk is cut short)")
        chunk = data[i:min(end, len(data))]
        if kind == b"VP8X" and length >= 1:
            chunk = chunk[:8] + bytes([chunk[8] & ~0x0C & 0xFF]) + chunk[9:]
        if kind not in (b"EXIF", b"XMP "):
            chunks.append(chunk)
        i = end
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


# -- HEIC -------------------------------------------------------------------------------------


def _boxes(data: bytes, start: int, end: int) -> Iterable[tuple[bytes, int, int]]:
    """(type, body start, box end) of the ISO BMFF boxes in data[start:end]."""
    i = start
    while i + 8 <= end:
        (size,) = struct.unpack(">I", data[i:i + 4])
        kind = data[i + 4:i + 8]
        head = 8
        if size == 1:
            if i + 16 > end:
                return
            (size,) = struct.unpack(">Q", data[i + 8:i + 16])
            head = 16
        elif size == 0:
            size = end - i
        if size < head or i + size > end:
            raise EvidenceError("the HEIC file is damaged (a box is cut short)")
        yield kind, i + head, i + size
        i += size


def check_heic(data: bytes) -> bytes:
    """The HEIC file as it is, if it carries no Exif or XMP item; refused otherwise."""
    for kind, body, end in _boxes(data, 0, len(data)):
        if kind != b"meta":
            continue
        for inner, ibody, iend in _boxes(data, body + 4, end):  # meta is a full box
            if inner != b"iinf":
                continue
            version = data[ibody]
            first = ibody + 4 + (2 if version == 0 else 4)
            for entry, ebody, _eend in _boxes(data, first, iend):
                if entry != b"infe" or data[ebody] < 2:
                    continue
                id_size = 2 if data[ebody] == 2 else 4
                item_type = data[ebody + 4 + id_size + 2:ebody + 4 + id_size + 6]
                if item_type in (b"Exif", b"mime"):
                    raise EvidenceError(
                        "this HEIC photo carries location metadata, which the board cannot "
                        "take out: send it as JPEG (the camera's \"Most Compatible\" format)")
    return data


# -- summons numbers --------------------------------------------------------------------------


def summons_numbers(text: str | Iterable[str], pattern: str = DEFAULT_SUMMONS_PATTERN
                    ) -> list[str]:
    """The summons numbers in a field (separated by commas, spaces or new lines), each checked
    against the department's pattern; in order, each once."""
    parts = re.split(r"[\s,;]+", text) if isinstance(text, str) else list(text)
    numbers: list[str] = []
    for raw in parts:
        n = str(raw).strip()
        if not n:
            continue
        if len(n) > 40 or not re.fullmatch(pattern, n):
            form = "10 digits" if pattern == DEFAULT_SUMMONS_PATTERN else f"the form {pattern}"
            raise EvidenceError(f"{n[:40]!r} is not a summons number ({form})")
        if n not in numbers:
            numbers.append(n)
    if len(numbers) > MAX_SUMMONSES:
        raise EvidenceError(f"at most {MAX_SUMMONSES} summons numbers on one close")
    return numbers
