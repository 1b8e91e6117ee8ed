"""What kind of image a file is, told by its first bytes (magic numbers), never by its name or declared type.

Pure: bytes in, an `ImageType` (or None) out. Only the types a warehouse photo may be are recognised: JPEG, PNG,
WebP and HEIC/HEIF (what phone cameras write). Anything else, including other ISO-BMFF images such as AVIF, is None.
"""

from __future__ import annotations

from enum import StrEnum

#: How many leading bytes `sniff` needs at most (an ISO-BMFF `ftyp` box with its compatible brands fits easily).
HEADER_BYTES = 256


class ImageType(StrEnum):
    JPEG = "image/jpeg"
    PNG = "image/png"
    WEBP = "image/webp"
    HEIC = "image/heic"
    HEIF = "image/heif"


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_WEBP_CHUNKS = (b"VP8 ", b"VP8L", b"VP8X")
# ISO-BMFF brands (ISO/IEC 23008-12 and the HEIF registry): HEVC-coded images and sequences...
_HEIC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"})
# ...and the generic HEIF structural brands, which also front other codecs (AVIF among them).
_HEIF_BRANDS = frozenset({b"mif1", b"msf1"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})


def sniff(head: bytes) -> ImageType | None:
    """The image type `head` (the first `HEADER_BYTES` or more of a file) starts, or None if it is none of ours.

    A signature alone is not enough where the format has more structure right after it: a PNG must go on with
    its IHDR chunk, a WebP RIFF container with a VP8 chunk, a JPEG with a marker segment. That rejects files
    cut off inside the header and text that merely starts with the right letters; whether the rest decodes is
    for the image decoder to find out.
    """
    if len(head) >= 4 and head[:3] == b"\xff\xd8\xff" and 0xC0 <= head[3] <= 0xFE:
        return ImageType.JPEG
    if len(head) >= 16 and head[:8] == _PNG_SIGNATURE and head[12:16] == b"IHDR":
        return ImageType.PNG
    if len(head) >= 16 and head[:4] == b"RIFF" and head[8:12] == b"WEBP" and head[12:16] in _WEBP_CHUNKS:
        return ImageType.WEBP
    return _sniff_heif(head)


def _sniff_heif(head: bytes) -> ImageType | None:
    """ISO-BMFF: the file starts with an `ftyp` box: size (4), 'ftyp', major brand (4), minor version (4),
    then compatible brands (4 each) up to the box's size."""
    if len(head) < 16 or head[4:8] != b"ftyp":
        return None
    size = int.from_bytes(head[:4], "big")
    if size < 16 or size % 4:
        return None
    end = min(size, len(head))
    brands = {head[8:12], *(head[i : i + 4] for i in range(16, end - 3, 4))}
    if brands & _AVIF_BRANDS and not brands & _HEIC_BRANDS:
        return None  # AVIF: an image, but not one we accept
    if head[8:12] in _HEIC_BRANDS or brands & _HEIC_BRANDS:
        return ImageType.HEIC
    if brands & _HEIF_BRANDS:
        return ImageType.HEIF
    return None  # other ISO-BMFF files: MP4, QuickTime, 3GP, ...
