"""Photos for the evidence tests, built here byte by byte: a JPEG with Exif GPS and XMP, a PNG
with text chunks, a WebP with EXIF, a HEIC with an Exif item. The image data is a stand-in
(the board checks structure and metadata, never decodes pixels); the browser test draws a real
JPEG on a canvas and passes it through `with_exif`."""

from __future__ import annotations

import struct

GPS_MARK = b"GPS-SECRET-40.6706N"  # found in the bytes if the location survived


def _ifd(entries: list[tuple[int, int, int, bytes]], offset: int, tail: bytes = b"") -> bytes:
    """A big-endian IFD at `offset`: (tag, type, count, 4-byte value) entries, no next IFD."""
    out = struct.pack(">H", len(entries))
    for tag, kind, count, value in entries:
        out += struct.pack(">HHI", tag, kind, count) + value
    return out + struct.pack(">I", 0) + tail


def exif_app1(orientation: int = 6) -> bytes:
    """An APP1 Exif segment: IFD0 with the orientation and a GPS IFD holding a latitude and
    a text that marks it."""
    ifd0_at = 8
    ifd0_len = 2 + 12 * 2 + 4
    gps_at = ifd0_at + ifd0_len
    gps_len = 2 + 12 * 3 + 4
    lat_at = gps_at + gps_len
    mark_at = lat_at + 24
    ifd0 = _ifd([(0x0112, 3, 1, struct.pack(">HH", orientation, 0)),
                 (0x8825, 4, 1, struct.pack(">I", gps_at))], ifd0_at)
    gps = _ifd([(0x0001, 2, 2, b"N\x00\x00\x00"),
                (0x0002, 5, 3, struct.pack(">I", lat_at)),
                (0x001B, 7, len(GPS_MARK), struct.pack(">I", mark_at))], gps_at)
    lat = struct.pack(">6I", 40, 1, 40, 1, 1416, 100)
    tiff = b"MM\x00\x2a" + struct.pack(">I", ifd0_at) + ifd0 + gps + lat + GPS_MARK
    body = b"Exif\x00\x00" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body


def xmp_app1() -> bytes:
    body = (b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta><exif:GPSLatitude>"
            + GPS_MARK + b"</exif:GPSLatitude></x:xmpmeta>")
    return b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body


def _segment(marker: int, body: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body


def with_exif(jpeg: bytes, orientation: int = 6) -> bytes:
    """A JPEG with Exif GPS and XMP segments put in right after its start marker."""
    return jpeg[:2] + exif_app1(orientation) + xmp_app1() + jpeg[2:]


def jpeg(orientation: int | None = 6) -> bytes:
    """A JPEG's structure: JFIF, (Exif with GPS, XMP,) a table, a frame, a scan, the end."""
    head = b"\xff\xd8" + _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    rest = (_segment(0xDB, b"\x00" + bytes(range(64)))
            + _segment(0xC0, b"\x08\x00\x10\x00\x10\x01\x01\x11\x00")
            + _segment(0xDA, b"\x01\x01\x00\x00\x3f\x00") + b"\x12\x34\xff\x00\x56\xff\xd9")
    plain = head + rest
    return plain if orientation is None else with_exif(plain, orientation)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + b"\x00\x00\x00\x00"


def png() -> bytes:
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", bytes(13))
            + _chunk(b"tEXt", b"Comment\x00" + GPS_MARK) + _chunk(b"eXIf", GPS_MARK)
            + _chunk(b"IDAT", b"\x78\x9c") + _chunk(b"IEND", b""))


def webp() -> bytes:
    chunks = (b"VP8X" + struct.pack("<I", 10) + bytes([0x0C]) + bytes(9)
              + b"VP8 " + struct.pack("<I", 4) + b"\x01\x02\x03\x04"
              + b"EXIF" + struct.pack("<I", len(GPS_MARK)) + GPS_MARK
              + b"\x00" * (len(GPS_MARK) & 1)  # a chunk is padded to an even length
              + b"XMP " + struct.pack("<I", 4) + b"<x/>")
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WEBP" + chunks


def _box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", 8 + len(body)) + kind + body


def heic(exif: bool = True) -> bytes:
    """ftyp, then meta → iinf → infe items: an hvc1 image (and an Exif item)."""
    def infe(item_id: int, kind: bytes) -> bytes:
        return _box(b"infe", b"\x02\x00\x00\x00" + struct.pack(">HH", item_id, 0) + kind + b"\x00")
    items = [infe(1, b"hvc1")] + ([infe(2, b"Exif")] if exif else [])
    iinf = _box(b"iinf", b"\x00\x00\x00\x00" + struct.pack(">H", len(items)) + b"".join(items))
    meta = _box(b"meta", b"\x00\x00\x00\x00" + iinf)
    return _box(b"ftyp", b"heic\x00\x00\x00\x00mif1heic") + meta + _box(b"mdat", b"\x00" * 8)
