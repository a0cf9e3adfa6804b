"""Request ids: random UUID version 4 strings, made many at a time."""

from __future__ import annotations

import os

_VARIANT_NIBBLES = "89ab"


def new_request_ids(count: int) -> list[str]:
    """``count`` random RFC 4122 version-4 UUIDs in canonical text form.

    Same format and entropy (122 random bits) as ``str(uuid.uuid4())``, but one
    ``os.urandom`` call and string slicing for the lot: a 10,000-row batch
    spent 2.5 us a row in ``uuid.uuid4()``.
    """
    digits = os.urandom(16 * count).hex()
    ids = []
    for start in range(0, 32 * count, 32):
        d = digits[start : start + 32]
        variant = _VARIANT_NIBBLES[int(d[16], 16) & 3]
        ids.append(f"{d[:8]}-{d[8:12]}-4{d[13:16]}-{variant}{d[17:20]}-{d[20:]}")
    return ids
