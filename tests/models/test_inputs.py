"""The input checks of the model API, with hypothesis: images by content, prompts by length."""

from __future__ import annotations

import io
import struct
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from activities.tripo import check_glb_header, classify, parse_retry_after
from activities.tripo_fake import make_glb
from api.model_schemas import (
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

printable = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")


@given(st.text(printable, min_size=1, max_size=MAX_PROMPT_CHARS).filter(lambda t: t.strip()),
       st.one_of(st.none(), st.text(printable, max_size=MAX_PROMPT_CHARS)))
def test_prompts_up_to_the_limit_are_accepted_trimmed(prompt: str, negative: str | None) -> None:
    text, neg = check_prompt(prompt, negative)
    assert text == prompt.strip() and 1 <= len(text) <= MAX_PROMPT_CHARS
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


# --- Tripo's answers --------------------------------------------------------------------------------


@given(st.one_of(st.none(), st.text(max_size=40)))
def test_retry_after_never_raises_and_is_bounded(value: str | None) -> None:
    seconds = parse_retry_after(value)
    assert seconds is None or 0 <= seconds <= 600


def test_retry_after_forms() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("100000") == 600.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=5), usegmt=True), now) == 5.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=5), usegmt=True), now) == 0.0
    assert parse_retry_after("soon") is None


@given(st.integers(100, 599), st.one_of(st.none(), st.integers(0, 5000)))
def test_every_refusal_has_a_class(status: int, code: int | None) -> None:
    cls = classify(status, code)
    if code in (1002, 2000, 2001, 2008, 2010):
        assert cls.error_type == {1002: "TripoAuthFailed", 2000: "TripoRateLimited", 2001: "TripoTaskNotFound",
                                  2008: "TripoContentPolicy", 2010: "TripoInsufficientCredits"}[code]
    elif status >= 500:
        assert cls.retryable


@given(st.binary(max_size=64), st.integers(0, 10_000))
def test_glb_header_check_never_raises(head: bytes, size: int) -> None:
    assert check_glb_header(head, size) is None or isinstance(check_glb_header(head, size), str)


def test_fake_glb_passes_the_header_check() -> None:
    glb = make_glb("x", "pbr_model")
    assert check_glb_header(glb[:12], len(glb)) is None
    assert check_glb_header(glb[:12], len(glb) - 1) is not None
