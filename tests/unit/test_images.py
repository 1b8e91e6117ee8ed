"""Telling image types by their first bytes (chalicelib.domain.images), and the thumbnails made from them."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from chalicelib.domain.images import HEADER_BYTES, ImageType, sniff
from chalicelib.services.photos import MAX_PIXELS, Rejected, make_thumbnail


def encoded(fmt: str, size: tuple[int, int] = (40, 30), mode: str = "RGB", **save: object) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, "red" if mode != "RGBA" else (255, 0, 0, 0)).save(out, fmt, **save)
    return out.getvalue()


def ftyp(major: bytes, *compatible: bytes, minor: bytes = b"\0\0\0\0") -> bytes:
    body = b"ftyp" + major + minor + b"".join(compatible)
    return struct.pack(">I", len(body) + 4) + body + b"\0\0\0\x08free"


def png_header(width: int, height: int) -> bytes:
    """A PNG signature and IHDR chunk (valid CRC) claiming `width` x `height`, then IEND: no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


# -- what the bytes say -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (encoded("JPEG"), ImageType.JPEG),
        (encoded("PNG"), ImageType.PNG),
        (encoded("PNG", mode="RGBA"), ImageType.PNG),
        (encoded("WEBP"), ImageType.WEBP),
        (encoded("WEBP", lossless=True), ImageType.WEBP),  # VP8L
        (encoded("WEBP", mode="RGBA"), ImageType.WEBP),  # VP8X or VP8L with alpha
        (ftyp(b"heic", b"mif1", b"heic"), ImageType.HEIC),  # what iPhones write
        (ftyp(b"heix", b"mif1", b"heix"), ImageType.HEIC),
        (ftyp(b"mif1", b"mif1", b"heic"), ImageType.HEIC),  # generic major brand, HEVC among the compatible ones
        (ftyp(b"hevc", b"msf1", b"hevc"), ImageType.HEIC),  # an image sequence
        (ftyp(b"mif1", b"mif1"), ImageType.HEIF),
    ],
)
def test_each_accepted_type_is_told_by_its_bytes(data: bytes, expected: ImageType) -> None:
    assert sniff(data[:HEADER_BYTES]) is expected


def test_the_first_header_bytes_are_enough() -> None:
    for fmt in ("JPEG", "PNG", "WEBP"):
        data = encoded(fmt, size=(2000, 1500))
        assert sniff(data[:HEADER_BYTES]) == sniff(data) is not None


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff",
        b"\xff\xd8",
        b"\xff\xd8\xff",  # SOI and a marker's first byte, cut off before the marker
        b"\xff\xd8\xff\x00garbage",  # 0x00 is no JPEG marker
        b"\x89PNG\r\n\x1a\n",  # signature only
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHD",  # cut off inside IHDR
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dtEXt",  # not IHDR first
        b"RIFF\x10\x00\x00\x00WEBP",  # RIFF/WebP without its VP8 chunk
        b"RIFF\x10\x00\x00\x00WAVEfmt ",  # a WAV file
        b"RIFF\x10\x00\x00\x00WEBPJUNK",
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj",
        b"GIF89a\x01\x00\x01\x00\x80\x00\x00",  # an image, but not one of ours
        b"BM6\x00\x00\x00\x00\x00\x00\x006\x00\x00\x00",  # BMP
        b"II*\x00\x08\x00\x00\x00",  # TIFF
        b"<svg xmlns='http://www.w3.org/2000/svg'></svg>",  # SVG: script-capable, never an image here
        b"<html><script>alert(1)</script></html>",
        b"PK\x03\x04\x14\x00\x00\x00",  # ZIP (and every Office document)
        b"\x7fELF\x02\x01\x01\x00",
        b"JFIF but written as text, file named photo.jpg",
        b"\x00" * 64,
        ftyp(b"avif", b"mif1", b"avif"),  # AVIF: an ISO-BMFF image we do not accept
        ftyp(b"mif1", b"mif1", b"avif"),
        ftyp(b"isom", b"isom", b"mp41"),  # an MP4 video
        ftyp(b"qt  ", b"qt  "),  # QuickTime
        ftyp(b"heic")[:11],  # cut off inside the major brand
        b"\x00\x00\x00\x0cftypheic",  # a box size too small to hold the brands
        b"\x00\x00\x00\x19ftypheic\x00\x00\x00\x00mif1x",  # a box size that is no multiple of 4
    ],
)
def test_anything_else_is_not_an_image(data: bytes) -> None:
    assert sniff(data) is None


def test_a_text_file_named_like_a_jpeg_is_not_one() -> None:
    text = b"Dies ist kein Foto, nur eine Datei namens foto.jpg\n" * 20
    assert sniff(text[:HEADER_BYTES]) is None


def test_truncated_files_of_each_type_are_refused_up_to_their_minimal_header() -> None:
    minimal = {"JPEG": 4, "PNG": 16, "WEBP": 16}
    for fmt, needed in minimal.items():
        data = encoded(fmt)
        for cut in range(needed):
            assert sniff(data[:cut]) is None, (fmt, cut)
        assert sniff(data[:needed]) is not None, fmt


def test_content_types_are_those_the_upload_api_offers() -> None:
    from chalicelib.domain.photos import IMAGE_TYPES

    assert {ImageType.JPEG, ImageType.PNG, ImageType.WEBP, ImageType.HEIC} == {ImageType(t) for t in IMAGE_TYPES}


# -- thumbnails ---------------------------------------------------------------------------------------------------


def decoded(jpeg: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(jpeg))
    assert image.format == "JPEG"
    assert image.mode == "RGB"
    return image


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_a_thumbnail_is_a_jpeg_within_320_px_that_keeps_the_aspect_ratio(fmt: str) -> None:
    thumb = decoded(make_thumbnail(encoded(fmt, size=(1600, 1200)), ImageType(f"image/{fmt.lower()}")))
    assert thumb.size == (320, 240)


def test_a_small_image_is_not_enlarged() -> None:
    assert decoded(make_thumbnail(encoded("PNG", size=(100, 50)), ImageType.PNG)).size == (100, 50)


def test_the_exif_orientation_is_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to view
    data = encoded("JPEG", size=(800, 400), exif=exif.tobytes())
    assert decoded(make_thumbnail(data, ImageType.JPEG)).size == (160, 320)


def test_transparency_becomes_white() -> None:
    thumb = decoded(make_thumbnail(encoded("PNG", size=(64, 64), mode="RGBA"), ImageType.PNG))
    pixel = thumb.getpixel((32, 32))
    assert isinstance(pixel, tuple)
    assert min(pixel) > 240


@pytest.mark.parametrize("mode", ["L", "1", "P", "I;16", "CMYK"])
def test_other_colour_modes_make_rgb_thumbnails(mode: str) -> None:
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    out = io.BytesIO()
    Image.new(mode, (500, 500)).save(out, fmt)
    assert decoded(make_thumbnail(out.getvalue(), ImageType(f"image/{fmt.lower()}"))).size == (320, 320)


def test_truncated_or_corrupt_image_data_is_rejected() -> None:
    data = encoded("JPEG", size=(600, 400), quality=95)
    with pytest.raises(Rejected, match="unreadable_image"):
        make_thumbnail(data[: len(data) // 2], ImageType.JPEG)
    png = encoded("PNG", size=(600, 400))
    with pytest.raises(Rejected, match="unreadable_image"):
        make_thumbnail(png[:40] + b"\x00" * 200 + png[240:], ImageType.PNG)


def test_bytes_are_decoded_only_as_the_type_they_were_sniffed_as() -> None:
    with pytest.raises(Rejected, match="unreadable_image"):
        make_thumbnail(encoded("PNG"), ImageType.JPEG)


def test_decompression_bombs_are_rejected_before_decoding() -> None:
    side = int(MAX_PIXELS**0.5) + 1
    header = png_header(side, side)  # a few dozen bytes that claim more than MAX_PIXELS
    assert sniff(header) is ImageType.PNG
    with pytest.raises(Rejected, match="too_many_pixels"):
        make_thumbnail(header, ImageType.PNG)
    with pytest.raises(Rejected, match="too_many_pixels"):  # beyond Pillow's own limit: its DecompressionBombError
        make_thumbnail(png_header(40_000, 40_000), ImageType.PNG)
