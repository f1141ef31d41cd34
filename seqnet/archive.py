"""Index a .tar.gz in memory: one zlib call and a header walk, about 5x faster than tarfile.

``tarfile``'s streaming reader decompresses in small chunks and parses every header in Python
objects; for the 50,000 small files of aclImdb_v1.tar.gz that is most of a second and a half.
Here the archive is decompressed in one call (zlib releases the GIL and runs at memory speed)
and the 512-byte headers are walked directly. Only plain archives are taken this way: anything
unusual (another compression, a truncated or corrupt stream, a checksum mismatch, pax or GNU
long-name headers, links, an archive too large to hold in memory) returns None, and the caller
reads the file with ``tarfile`` as before, which decides how to treat it.
"""

from __future__ import annotations

import os
import tarfile
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

BLOCK = tarfile.BLOCKSIZE
# Archives that inflate beyond this are streamed instead, so memory stays bounded.
MAX_INFLATED_BYTES = 1 << 30
_REGULAR = (tarfile.REGTYPE, tarfile.AREGTYPE)
_ZERO_BLOCK = bytes(BLOCK)


class Member(NamedTuple):
    """A file or folder of the archive: its name, whether it is a file, and where its data is."""

    name: str
    is_file: bool
    offset: int
    size: int


def inflate(path: Path) -> bytes | None:
    """The decompressed bytes of a complete, single-member gzip file, or None."""
    with open(path, "rb") as file:
        if file.read(2) != b"\x1f\x8b" or os.fstat(file.fileno()).st_size > MAX_INFLATED_BYTES:
            return None  # not gzip, or too large to hold: tarfile streams it
        file.seek(0)
        compressed = file.read()
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip header and trailer
    try:
        data = inflater.decompress(compressed, MAX_INFLATED_BYTES + 1)
    except zlib.error:
        return None
    complete = inflater.eof and not inflater.unused_data and not inflater.unconsumed_tail
    return data if complete and len(data) <= MAX_INFLATED_BYTES else None


def members(data: bytes) -> list[Member] | None:
    """Files and folders of an uncompressed tar, in order, or None if any header is unusual."""
    found: list[Member] = []
    header_offsets, checksums = [], []
    offset = 0
    while offset + BLOCK <= len(data):
        header = data[offset : offset + BLOCK]
        if header == _ZERO_BLOCK:  # the end-of-archive marker; tarfile stops here too
            break
        try:
            member = _parse_header(header, offset + BLOCK)
            checksum = _octal(header[148:156])
        except ValueError:
            return None
        if member is None:
            return None
        found.append(member)
        header_offsets.append(offset)
        checksums.append(checksum)
        # Like tarfile, only files have data blocks; a folder's size field is ignored.
        offset += BLOCK + (-(-member.size // BLOCK) * BLOCK if member.is_file else 0)
    else:
        if offset != len(data):  # a partial block: leave the error message to tarfile
            return None
    return found if _checksums_match(data, header_offsets, checksums) else None


def _parse_header(header: bytes, data_offset: int) -> Member | None:
    """A plain ustar or GNU header of a file or folder, else None (tarfile's business)."""
    kind = header[156:157]
    if kind not in (*_REGULAR, tarfile.DIRTYPE) or header[345] != 0:  # 345: ustar name prefix
        return None
    try:
        size = _octal(header[124:136])
    except (ValueError, tarfile.HeaderError):
        return None
    name = header[:100].split(b"\0", 1)[0].decode(tarfile.ENCODING, "surrogateescape")
    if size < 0 or (kind == tarfile.AREGTYPE and name.endswith("/")):  # old-style folder
        return None
    is_file = kind in _REGULAR
    return Member(name if is_file else name.rstrip("/"), is_file, data_offset, size)


def _octal(field: bytes) -> int:
    """``tarfile.nti`` without its per-call overhead; raises ValueError where it would fail."""
    if field[0] & 0x80:  # base-256, for sizes of 8 GiB and more
        return tarfile.nti(field)
    # int() of bytes strips only ASCII whitespace, so it is, if anything, stricter than nti.
    return int(field.split(b"\0", 1)[0].strip() or b"0", 8)


def _checksums_match(data: bytes, header_offsets: list[int], checksums: list[int]) -> bool:
    """Check every header's unsigned checksum at once (the checksum field counts as spaces)."""
    if not header_offsets:
        return True
    usable = len(data) // BLOCK * BLOCK
    blocks = np.frombuffer(data, dtype=np.uint8, count=usable).reshape(-1, BLOCK)
    headers = blocks[np.asarray(header_offsets) // BLOCK]
    sums = headers.sum(axis=1, dtype=np.int64) - headers[:, 148:156].sum(axis=1, dtype=np.int64)
    return bool(np.array_equal(sums + 8 * ord(" "), checksums))
