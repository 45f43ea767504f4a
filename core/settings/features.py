"""Settings groups of the product's features: uploads and analysis, game projects, fleets, webhooks,
3D models and the object store."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, IPvAnyNetwork
from pydantic_settings import NoDecode

from core.settings.base import GroupSettings, comma_separated


class AnalysisSettings(GroupSettings):
    """Uploads and analysis.

    How large an upload or request body may be, and how much the analysis of uploaded code may
    take; the API's analyses (`POST /api/v1/analysis`, game uploads) run in worker processes
    (issue #19).
    """

    max_upload_bytes: int = 1024 * 1024
    max_json_bytes: int = 1024 * 1024
    analysis_max_depth: int = 200
    analysis_time_budget_seconds: float = 5.0
    analysis_workers: int = Field(default=1, ge=1, le=64, description=(
        "worker processes the API runs uploaded code's analysis in, off its event loop; each is one busy "
        "core while it analyzes"))
    analysis_per_key: int = Field(default=1, ge=1, le=64, description=(
        "analyses one API key may have running or waiting at once; one more is answered 429 with Retry-After"))
    analysis_queue: int = Field(default=8, ge=1, le=10_000, description=(
        "analyses running or waiting across all keys; one more is answered 503 with Retry-After"))


class ProjectSettings(GroupSettings):
    """Game projects.

    Projects with npm dependencies (issue #24): where their builds install packages from, which
    blocked packages the admin allows, and how large a project may be.
    """

    npm_registry: str = Field(
        default="", description="npm registry (or mirror: Verdaccio, Artifactory, Nexus) the project builds install "
        "dependencies from, as npm's `--registry`; nodes without internet point it at a mirror. Empty: npm's own "
        "configuration (`https://registry.npmjs.org/`)")
    allowed_packages: Annotated[set[str], NoDecode, BeforeValidator(comma_separated)] = Field(
        default_factory=set, description="npm packages (`name@version`, comma-separated or JSON) a project may "
        "depend on although the analysis blocks them (a host module, install scripts, native code): the admin's "
        "allow list")
    project_max_bytes: int = Field(
        default=32 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024, description="largest project upload (a "
        "folder, .zip or .tar.gz): bytes of the archive and of its unpacked files; beyond it `project-too-large` "
        "(413)")
    project_max_files: int = Field(default=2_000, ge=1, le=100_000, description=(
        "most files one project may hold (`node_modules/` and `.git/` are skipped, not counted)"))
    project_max_file_bytes: int = Field(default=4 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024, description=(
        "largest single file of a project"))
    project_max_dependencies: int = Field(default=300, ge=0, le=10_000, description=(
        "most npm packages a project's lockfile may install (dev dependencies do not count)"))


class FleetSettings(GroupSettings):
    """Fleets and allocation.

    How a fleet's autoscaler keeps its servers (issue #10), and how long an allocation may wait
    for a ready one.
    """

    fleet_sync_seconds: float = Field(
        default=5.0, gt=0, le=300,
        description="How often a fleet's autoscaler looks at its servers: replaces lost ones, keeps the "
        "buffer of ready servers, moves a rolling update on. An allocation that finds no ready server wakes it "
        "at once.")
    fleet_max_size: int = Field(
        default=100, ge=1, le=10_000, description="Most servers one fleet may ask for (its replicas or max_size).")
    fleet_failure_backoff_max_seconds: float = Field(
        default=60.0, gt=0, description="Longest pause a fleet takes before starting servers again after "
        "servers failed in a row (1 s, 2 s, 4 s, ... up to this).")
    allocation_max_wait_seconds: float = Field(
        default=30.0, ge=0, le=600, description="Longest `wait_seconds` an allocation may ask for when no "
        "ready server is there; without it, no-ready-server is answered at once.")


class WebhookSettings(GroupSettings):
    """Webhooks.

    How deliveries of webhook events (issue #12) are retried, which addresses they may target, and
    how long their log is kept.
    """

    webhook_retry_seconds: float = Field(
        default=86_400.0, gt=0,
        description="How long a delivery is retried (exponential backoff) before it fails.")
    webhook_backoff_initial_seconds: float = Field(
        default=10.0, gt=0,
        description="Wait before the second attempt of a delivery; doubled after each failure.")
    webhook_backoff_max_seconds: float = Field(
        default=3600.0, gt=0, description="Longest wait between two attempts of a delivery.")
    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, le=120, description="Time a receiver has to answer one delivery attempt.")
    webhook_disable_after_days: float = Field(
        default=3.0, gt=0,
        description="A webhook whose deliveries all failed for this many days in a row is disabled.")
    webhook_allow_private: bool = Field(
        default=False,
        description="Let webhooks target private, loopback and link-local addresses (SSRF guard off).")
    webhook_allowed_cidrs: list[IPvAnyNetwork] = Field(
        default_factory=list, description='Networks webhooks may target even though they are private, '
        'as JSON: ["10.20.0.0/16"]; the finer alternative to webhook_allow_private.')
    webhook_log_retention_days: float = Field(
        default=30.0, gt=0, description="Finished deliveries (and their attempts) are kept this long.")


class GenerationSettings(GroupSettings):
    """3D models.

    The Tripo proxy of the 3D-model feature (DESIGN §6), the sizes of its images and GLB files, and
    its status cache.
    """

    tripo_api_key: str = ""  # tsk_...; read by the control worker's activities only, never put in history
    tripo_base_url: str = "https://api.tripo3d.ai"
    tripo_timeout_seconds: float = 30.0
    tripo_concurrency: int = Field(default=10, ge=1)  # running Tripo tasks per API key (Tripo's own limit)
    tripo_poll_initial_seconds: float = 2.0
    tripo_poll_max_seconds: float = 10.0
    tripo_deadline_seconds: float = 1800.0
    max_image_bytes: int = 20 * 1024 * 1024
    max_model_bytes: int = 512 * 1024 * 1024
    model_status_cache_ttl: float = 5.0
    model_status_cache_prefix: str = "gsf:model-status:"


class ObjectStoreSettings(GroupSettings):
    """Object store.

    Where the 3D-model feature keeps uploaded images and generated GLB files (core/storage.py): a
    local folder, or an S3-compatible bucket.
    """

    object_store: Literal["local", "s3"] = "local"
    s3_endpoint_url: str = ""  # e.g. https://cos.ap-guangzhou.myqcloud.com for Tencent COS
    s3_bucket: str = ""  # COS: <name>-<appid>
    s3_region: str = ""
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_addressing_style: Literal["auto", "virtual", "path"] = "auto"
    s3_presign_seconds: int = 600
