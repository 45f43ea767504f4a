"""The input checks of the model API, with hypothesis: images by content, prompts by length."""

from __future__ import annotations

import io
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from api.generation_schemas import (
    MAX_PROMPT_CHARS,
    MAX_SIDE,
    MIN_SIDE,
    check_idempotency_key,
    check_image,
    check_prompt,
    sniff_image_type,
)
from core.errors import BadRequest, InvalidImage, InvalidPrompt, UploadTooLarge
from tests.models.conftest import image_bytes

LIMIT = 20 * 1024 * 1024
FORMATS = {"png": "PNG", "jpg": "JPEG", "webp": "WEBP"}


MAGIC = [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"RIFF\x10\x00\x00\x00WEBPVP8 "]


@given(st.sampled_from(MAGIC), st.binary(max_size=4096))
@settings(max_examples=400)
def test_any_bytes_are_accepted_or_refused_cleanly(magic: bytes, rest: bytes) -> None:
    data = magic + rest
    try:
        checked = check_image(data, LIMIT)
    except (InvalidImage, UploadTooLarge):
        return
    assert checked.type == sniff_image_type(data)


@given(st.sampled_from(sorted(FORMATS)), st.integers(MIN_SIDE, 200), st.integers(MIN_SIDE, 200))
@settings(max_examples=40, deadline=None)
def test_real_images_in_range_are_accepted(kind: str, width: int, height: int) -> None:
    data = image_bytes(FORMATS[kind], (width, height))
    checked = check_image(data, LIMIT)
    assert (checked.type, checked.width, checked.height, checked.size) == (kind, width, height, len(data))


@given(st.sampled_from(sorted(FORMATS)),
       st.one_of(st.tuples(st.integers(1, MIN_SIDE - 1), st.integers(MIN_SIDE, 64)),
                 st.tuples(st.integers(MIN_SIDE, 64), st.integers(1, MIN_SIDE - 1))))
@settings(max_examples=30, deadline=None)
def test_too_small_images_are_refused(kind: str, size: tuple[int, int]) -> None:
    with pytest.raises(InvalidImage, match="each side"):
        check_image(image_bytes(FORMATS[kind], size), LIMIT)


def test_too_large_sides_are_refused_without_decoding() -> None:
    # A PNG header claiming 6001 x 30: only the header is read.
    data = image_bytes("PNG", (MAX_SIDE + 1, 30))
    with pytest.raises(InvalidImage, match="each side"):
        check_image(data, LIMIT)
    bomb = bytearray(image_bytes("PNG", (32, 32)))
    bomb[16:24] = struct.pack(">II", 100_000, 100_000)  # IHDR width/height, far past Pillow's bomb limit
    with pytest.raises(InvalidImage):
        check_image(bytes(bomb), LIMIT)


@given(st.sampled_from(sorted(FORMATS)), st.data())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_truncated_images_are_refused(kind: str, data: st.DataObject) -> None:
    full = image_bytes(FORMATS[kind], (48, 40))
    cut = data.draw(st.integers(1, len(full) - 1))
    with pytest.raises(InvalidImage):
        check_image(full[:cut], LIMIT)


@given(st.binary(min_size=1, max_size=64).filter(lambda b: sniff_image_type(b) is None))
def test_wrong_magic_is_refused_whatever_follows(prefix: bytes) -> None:
    with pytest.raises(InvalidImage, match="not a PNG, JPEG or WebP"):
        check_image(prefix + image_bytes("PNG"), LIMIT)


def test_size_limit_and_empty() -> None:
    data = image_bytes("PNG")
    with pytest.raises(UploadTooLarge):
        check_image(data, len(data) - 1)
    assert check_image(data, len(data)).size == len(data)
    with pytest.raises(InvalidImage, match="empty"):
        check_image(b"", LIMIT)


def test_a_gif_named_png_is_refused() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32)).save(buf, "GIF")
    with pytest.raises(InvalidImage, match="not a PNG"):
        check_image(buf.getvalue(), LIMIT)


# --- prompts ---------------------------------------------------------------------------------------

printable = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")


@given(st.text(printable, min_size=1, max_size=MAX_PROMPT_CHARS).filter(lambda t: t.strip()),
       st.one_of(st.none(), st.text(printable, max_size=MAX_PROMPT_CHARS)))
def test_prompts_up_to_the_limit_are_accepted_trimmed(prompt: str, negative: str | None) -> None:
    text, neg = check_prompt(prompt, negative)
    assert text == prompt.strip()
    assert 1 <= len(text) <= MAX_PROMPT_CHARS
    assert neg == ((negative or "").strip() or None)


@given(st.text(st.sampled_from(" \t\n\r\u3000"), max_size=50))
def test_blank_prompts_are_refused(prompt: str) -> None:
    with pytest.raises(InvalidPrompt, match="empty"):
        check_prompt(prompt)


@given(st.text(printable, min_size=MAX_PROMPT_CHARS + 1, max_size=MAX_PROMPT_CHARS + 300)
       .filter(lambda t: len(t.strip()) > MAX_PROMPT_CHARS))
@settings(suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
def test_long_prompts_are_refused(prompt: str) -> None:
    with pytest.raises(InvalidPrompt, match="at most 1024"):
        check_prompt(prompt)
    with pytest.raises(InvalidPrompt, match="negative"):
        check_prompt("a chair", prompt)


@given(st.text(max_size=300))
def test_idempotency_keys(value: str) -> None:
    ok = 1 <= len(value) <= 255 and value.isascii() and value.isprintable()
    if ok:
        assert check_idempotency_key(value) == value
    else:
        with pytest.raises(BadRequest):
            check_idempotency_key(value)
