"""Requests, answers and input checks of the 3D-model API (`/api/v1/models`).

Inputs are refused here, before anything reaches Tripo: images are recognised by their content (PNG,
JPEG or WebP magic bytes, then Pillow), never by their name; prompts are 1–1024 characters.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from core.contracts import ModelOptions
from core.errors import BadRequest, InvalidImage, InvalidPrompt, UploadTooLarge

MAX_PROMPT_CHARS = 1024
MIN_SIDE = 20
MAX_SIDE = 6000
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"
JPEG_MAGIC = b"\xff\xd8\xff"
JPEG_EOI = b"\xff\xd9"
# Tripo's names for the types, with Pillow's format and the MIME type.
IMAGE_TYPES: dict[str, tuple[str, str]] = {"png": ("PNG", "image/png"), "jpg": ("JPEG", "image/jpeg"),
                                           "webp": ("WEBP", "image/webp")}


# --- input checks ----------------------------------------------------------------------------


def sniff_image_type(data: bytes) -> str | None:
    """`png`, `jpg` or `webp` from the first bytes, or None."""
    if data.startswith(PNG_MAGIC):
        return "png"
    if data.startswith(JPEG_MAGIC):
        return "jpg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


@dataclass(frozen=True)
class CheckedImage:
    type: str
    mime: str
    width: int
    height: int
    size: int


def check_image(data: bytes, max_bytes: int) -> CheckedImage:
    """The image's type and size, or `UploadTooLarge` / `InvalidImage` saying what is wrong with it.

    Cheap enough for the request path: Pillow reads the header (and, for PNG, every chunk's CRC)
    but does not decode the pixels; truncation is found from each format's structure.
    """
    if len(data) > max_bytes:
        raise UploadTooLarge(f"the image is larger than {max_bytes} bytes")
    if not data:
        raise InvalidImage("the image is empty")
    kind = sniff_image_type(data)
    if kind is None:
        raise InvalidImage("not a PNG, JPEG or WebP image (the type is read from the content, not the name)")
    fmt, mime = IMAGE_TYPES[kind]
    try:
        with warnings.catch_warnings():
            # Sides are checked below, far under Pillow's bomb limit; its warning would only be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[fmt]) as img:
                width, height = img.size
                _check_sides(width, height)
                img.verify()
    except InvalidImage:
        raise
    except Image.DecompressionBombError:
        raise InvalidImage(f"the image's sides must be {MIN_SIDE} to {MAX_SIDE} pixels") from None
    except Exception:  # noqa: BLE001 - Pillow raises many types for damaged files; all mean the same here
        raise InvalidImage(f"the {kind.upper()} image is damaged or truncated") from None
    if not _complete(kind, data):
        raise InvalidImage(f"the {kind.upper()} image is truncated")
    return CheckedImage(type=kind, mime=mime, width=width, height=height, size=len(data))


def _check_sides(width: int, height: int) -> None:
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise InvalidImage(f"the image is {width}x{height} pixels; each side must be {MIN_SIDE} to {MAX_SIDE}")


def _complete(kind: str, data: bytes) -> bool:
    """Whether the file has its end: PNG's IEND chunk, JPEG's EOI marker, WebP's full RIFF length."""
    if kind == "png":
        return PNG_IEND in data
    if kind == "jpg":
        return data.rstrip(b"\x00").endswith(JPEG_EOI)
    riff_size: int = struct.unpack("<I", data[4:8])[0]
    return len(data) >= riff_size + 8


def check_prompt(prompt: str, negative_prompt: str | None = None) -> tuple[str, str | None]:
    """The prompt and negative prompt, trimmed; `InvalidPrompt` if empty or longer than 1024 characters."""
    text = prompt.strip()
    if not text:
        raise InvalidPrompt("the prompt is empty")
    if len(text) > MAX_PROMPT_CHARS:
        raise InvalidPrompt(f"the prompt is {len(text)} characters long; at most {MAX_PROMPT_CHARS}")
    if "\x00" in text:
        raise InvalidPrompt("the prompt contains a NUL character")
    negative = (negative_prompt or "").strip() or None
    if negative is not None:
        if len(negative) > MAX_PROMPT_CHARS:
            raise InvalidPrompt(f"the negative prompt is {len(negative)} characters long; at most {MAX_PROMPT_CHARS}")
        if "\x00" in negative:
            raise InvalidPrompt("the negative prompt contains a NUL character")
    return text, negative


def check_idempotency_key(value: str) -> str:
    if not 1 <= len(value) <= 255 or not value.isascii() or not value.isprintable():
        raise BadRequest("Idempotency-Key: 1 to 255 printable ASCII characters")
    return value


# --- requests -----------------------------------------------------------------------------------


class ModelCreate(BaseModel):
    """The JSON body of a text-to-model job; an image job sends the same options as multipart fields."""

    model_config = ConfigDict(extra="forbid")

    prompt: str
    negative_prompt: str | None = None
    model_version: str | None = None
    texture: bool | None = None
    pbr: bool | None = None
    face_limit: int | None = None

    def options(self) -> dict[str, Any]:
        return {"model_version": self.model_version, "texture": self.texture, "pbr": self.pbr,
                "face_limit": self.face_limit}


OPTION_FIELDS = tuple(ModelOptions.model_fields)


# --- answers ------------------------------------------------------------------------------------


class ModelLinks(BaseModel):
    job: str
    status: str
    result: str


class ModelError(BaseModel):
    code: str
    message: str


class ModelJobStatusPublic(BaseModel):
    job_id: str
    status: str
    progress: int = Field(ge=0, le=100)
    created_at: datetime
    started_at: datetime | None
    updated_at: datetime
    finished_at: datetime | None
    error: ModelError | None
    links: ModelLinks


class ModelResultInfo(BaseModel):
    sha256: str
    size: int | None
    source: str | None
    content_type: str = "model/gltf-binary"


class ModelJobPublic(ModelJobStatusPublic):
    kind: str
    prompt: str | None
    negative_prompt: str | None
    image_type: str | None
    image_size: int | None
    options: dict[str, Any]
    tripo_task_id: str | None
    result: ModelResultInfo | None
    workflow_id: str
    workflow_url: str


class ModelJobsPublic(BaseModel):
    items: list[ModelJobPublic]
    count: int
    next_offset: int | None


class ModelJobCreated(BaseModel):
    job_id: str
    status: str
    created_at: datetime
    links: ModelLinks
    workflow_id: str
    workflow_url: str
