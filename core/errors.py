"""Errors every gsf process can raise, mapped by the API to application/problem+json.

    GsfError                      base; `slug`, `status`, `title`
    ├── BadRequest                input the client can fix (400)
    │   ├── UploadTooLarge        the upload exceeds its size limit (413)
    │   │   └── ProjectTooLarge   a project over its size, file-count or dependency limits (413)
    │   ├── InvalidUpload         not a usable game module file (400)
    │   │   ├── NotText           an upload that is not UTF-8 text or holds a NUL byte (422)
    │   │   ├── UnsafeArchive     an archive entry escaping its folder, a link or a device (422)
    │   │   └── InvalidProject    a project without a usable entry or package.json (422)
    │   ├── InvalidAllowList      an allow list names unknown or fixed analysis rules (422)
    │   ├── InvalidLimits         an unknown plan, limits below the floors or above the maxima (422)
    │   ├── InvalidImage          not a PNG, JPEG or WebP image of usable size (400)
    │   ├── InvalidPrompt         an empty or too long text prompt (422)
    │   ├── IdempotencyKeyReused  an Idempotency-Key sent again with another request (422)
    │   └── UnsupportedMediaType  a body that is neither of the accepted types (415)
    ├── Unauthorized              no or an unknown credential (401)
    ├── Forbidden                 a known credential without the right (403)
    ├── NotFound                  no such resource, or not the caller's (404)
    ├── Conflict                  the resource is in a state that forbids the request (409)
    │   └── ModelNotReady         a 3D-model job has no result yet (409)
    ├── NoCapacity                no node can take the server (409)
    └── Unavailable               a dependency (Temporal, DB, Docker) does not answer (503)
"""

from __future__ import annotations

PROBLEM_BASE = "https://gsf.dev/problems/"


class GsfError(Exception):
    """Base of every error the platform reports to a client."""

    slug = "internal-error"
    status = 500
    title = "Internal error"

    def __init__(self, detail: str = "", **extra: object) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra

    @property
    def type(self) -> str:
        return PROBLEM_BASE + self.slug


class BadRequest(GsfError):
    slug, status, title = "bad-request", 400, "Bad request"


class UploadTooLarge(BadRequest):
    slug, status, title = "upload-too-large", 413, "Upload too large"


class InvalidUpload(BadRequest):
    slug, status, title = "invalid-upload", 400, "Invalid upload"


class NotText(InvalidUpload):
    """A game module that is binary, not UTF-8, or holds a NUL byte: no JavaScript engine runs it."""

    slug, status, title = "not-text", 422, "Upload is not text"


class ProjectTooLarge(UploadTooLarge):
    """A project (folder or archive) over its total size, file count, per-file size or dependency count."""

    slug, status, title = "project-too-large", 413, "Project too large"


class UnsafeArchive(InvalidUpload):
    """An archive entry that would land outside the project (`../`, an absolute path), a symlink or
    hardlink, a device or FIFO, or bytes that are not a readable zip/tar.gz: refused before extracting."""

    slug, status, title = "unsafe-archive", 422, "Unsafe or unreadable archive"


class InvalidProject(InvalidUpload):
    """A project whose package.json is unreadable or whose entry file cannot be found."""

    slug, status, title = "invalid-project", 422, "Invalid project"


class InvalidAllowList(BadRequest):
    slug, status, title = "invalid-allow-list", 422, "Invalid allow list"


class InvalidLimits(BadRequest):
    """An unknown plan, or resource limits below what the runtime needs or beyond what the admin allows."""

    slug, status, title = "invalid-limits", 422, "Invalid resource limits"


class Unauthorized(GsfError):
    slug, status, title = "unauthorized", 401, "Unauthorized"


class Forbidden(GsfError):
    slug, status, title = "forbidden", 403, "Forbidden"


class NotFound(GsfError):
    slug, status, title = "not-found", 404, "Not found"


class Conflict(GsfError):
    slug, status, title = "conflict", 409, "Conflict"


class NoCapacity(GsfError):
    slug, status, title = "no-capacity", 409, "No node has capacity"


class Unavailable(GsfError):
    slug, status, title = "unavailable", 503, "Service unavailable"


class InvalidImage(BadRequest):
    slug, status, title = "invalid-image", 400, "Invalid image"


class InvalidPrompt(BadRequest):
    slug, status, title = "invalid-prompt", 422, "Invalid prompt"


class IdempotencyKeyReused(BadRequest):
    slug, status, title = "idempotency-key-reused", 422, "Idempotency key reused"


class UnsupportedMediaType(BadRequest):
    slug, status, title = "unsupported-media-type", 415, "Unsupported media type"


class ModelNotReady(Conflict):
    slug, status, title = "model-not-ready", 409, "Model not ready"


class StartupError(Exception):
    """A process cannot start as configured; the CLI prints the message, not a traceback."""
