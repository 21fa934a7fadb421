"""Text drawn from cached words (`render.text.line_pieces`): the same pixels as Pillow drawing the whole
line, and the quick width check (`render.text.fits`) gives the same answer as measuring the line."""

from __future__ import annotations

import random
import string

import numpy as np
import pytest
from PIL import Image, ImageDraw

from keras_vizcallbacks.render import text as T

NAMES = ["circle", "square", "triangle", "T-shirt/top", "Ankle boot", "jeep", "AV To", "f(x)", "Ωmega", "café"]
PRINTABLE = string.ascii_letters + string.digits + string.punctuation + "·→…×±°é"


def lines(seed: int, n: int) -> list[str]:
    """Caption- and title-like lines, and lines of random words of every printable character."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        a, b, r = rng.choice(NAMES), rng.choice(NAMES), rng.random()
        words = ("".join(rng.choice(PRINTABLE) for _ in range(rng.randint(1, 7))) for _ in range(rng.randint(1, 6)))
        out += [
            f"#{i}  true: {a}",
            f"pred: {b}  p={r:.2f}",
            f"map max {r / 7:.3g}",
            f"Grad-CAM · conv2d_{i % 3} · epoch {i}",
            " ".join(words),
            f"  leading and trailing {a}  ",
        ]
    return out


@pytest.mark.parametrize("size", [9, 13, 17, 22, 31])
@pytest.mark.parametrize("bold", [False, True])
def test_words_draw_the_pixels_pillow_draws_for_the_whole_line(size, bold):
    fill = (200, 120, 90)
    for line in lines(size + bold, 25):
        ref = Image.new("RGB", (720, 4 * size), (24, 24, 24))
        ImageDraw.Draw(ref).text((5, size), line, fill=fill, font=T.font(size, bold))
        ours = Image.new("RGB", (720, 4 * size), (24, 24, 24))
        T.draw_line(ours, (5, size), line, fill, size, bold)
        assert T.line_pieces(line, size, bold) is not None, line  # the word path was the one tested
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(ref), err_msg=f"{line!r} at {size} px")


def test_the_quick_width_check_agrees_with_measuring_the_line():
    """`fits` skips Pillow's measurement only with a margin that covers the difference between the words'
    span and Pillow's box, so at every width it answers as ``text_size(line)[0] <= width`` does."""
    for size, bold in ((11, False), (17, False), (24, True)):
        for line in lines(size, 12):
            measured = T.text_size(line, size, bold)[0]
            assert abs(measured - T._span(line, size, bold)) <= T._FIT_MARGIN - 2, line
            for width in range(measured - 8, measured + 9):
                assert T.fits(line, width, size, bold) == (measured <= width), (line, width)


def test_right_to_left_and_multi_line_text_is_drawn_in_one_piece():
    for line in ("שלום עולם 12", "مرحبا بالعالم", "two\nlines"):
        assert T.line_pieces(line, 17) is None
        ref = Image.new("RGB", (300, 60), 0)
        ImageDraw.Draw(ref).text((4, 10), line, fill=(255, 255, 255), font=T.font(17))
        ours = Image.new("RGB", (300, 60), 0)
        T.draw_line(ours, (4, 10), line, (255, 255, 255), 17)
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(ref))


def test_headers_with_a_new_epoch_redraw_only_the_new_number():
    """A header is drawn from its words: the second epoch's title rasterizes "1" and nothing else."""
    T._word_ink.cache_clear()
    image = np.zeros((8, 400, 3), dtype=np.uint8)
    T.header(image, "Grad-CAM · conv2d_1 · epoch 0", "16 samples · each map min-max")
    before = T._word_ink.cache_info()
    T.header(image, "Grad-CAM · conv2d_1 · epoch 1", "16 samples · each map min-max")
    after = T._word_ink.cache_info()
    assert after.misses - before.misses == 1 and after.hits > before.hits
