"""What the lowest supported versions need (scripts/test-lowest.sh runs this file with every direct dependency
at its lower bound): the bit depth of a grayscale image comes from its format as well as its mode, because
Pillow 10.2 opens a 16-bit PNG in mode ``I`` (32-bit), where later Pillow says ``I;16``."""

from __future__ import annotations

import pytest
from PIL import Image

from azmm_magic.core.images.codec import working_mode


@pytest.mark.parametrize(
    "mode, fmt, label",
    [
        ("I", "PNG", "converted 16-bit grayscale PNG to 8-bit"),  # Pillow 10.2's mode for a 16-bit PNG
        ("I;16", "PNG", "converted 16-bit grayscale PNG to 8-bit"),  # later Pillow's
        ("I;16", "TIFF", "converted 16-bit grayscale TIFF to 8-bit"),
        ("I", "TIFF", "converted 32-bit grayscale TIFF to 8-bit"),  # TIFF holds real 32-bit integers
        ("I", "PPM", "converted 16-bit grayscale PPM to 8-bit"),  # PGM's maxval is at most 65535
        ("I", None, "converted 32-bit grayscale image to 8-bit"),  # an in-memory image: the mode is all there is
        ("F", "TIFF", "converted 32-bit float grayscale TIFF to 8-bit"),
    ],
)
def test_grayscale_bit_depth_reads_the_format(mode, fmt, label):
    img = Image.new(mode, (4, 3), 300)
    converted, notice = working_mode(img, fmt)
    assert notice == label
    assert converted.mode == "L" and converted.size == (4, 3)
