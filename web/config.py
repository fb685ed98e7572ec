"""Settings from the environment (12-factor). A missing required setting stops start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping

REQUIRED = ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "PUBLIC_URL", "SMTP_URL")

# Development defaults; used only when WORKTEAM_ENV=development (never for secrets in production).
DEV_DEFAULTS = {
    "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/workteam",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "SECRET_KEY": "dev-only-secret-key-change-me",
    "PUBLIC_URL": "http://127.0.0.1:5000",
    "SMTP_URL": "smtp://127.0.0.1:8025",
}


class ConfigError(RuntimeError):
    pass


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    return raw.strip().lower() in ("1", "true", "yes", "on")


def load_settings(env: Mapping[str, str] | None = None) -> dict:
    """Read every setting; raise ConfigError naming each missing required one."""
    env = dict(os.environ if env is None else env)
    development = env.get("WORKTEAM_ENV", "production") == "development"
    if development:
        for key, value in DEV_DEFAULTS.items():
            env.setdefault(key, value)
    missing = [name for name in REQUIRED if not env.get(name)]
    if missing:
        raise ConfigError(
            "missing required setting(s): " + ", ".join(missing) + " (see .env.example)"
        )
    return {
        "DATABASE_URL": env["DATABASE_URL"],
        "REDIS_URL": env["REDIS_URL"],
        "SECRET_KEY": env["SECRET_KEY"],
        "PUBLIC_URL": env["PUBLIC_URL"].rstrip("/"),
        "SMTP_URL": env["SMTP_URL"],
        "PORT": _int(env, "PORT", 5000),
        "WORKTEAM_ENV": "development" if development else "production",
        "CELERY_BROKER_URL": env.get("CELERY_BROKER_URL") or env["REDIS_URL"],
        "MAIL_FROM": env.get("WORKTEAM_MAIL_FROM", "Workteam <no-reply@workteam.example>"),
        # SCIM limits, advertised in /ServiceProviderConfig where SCIM has a place for them.
        "MAX_CONTENT_LENGTH": _int(env, "WORKTEAM_MAX_BODY_BYTES", 1_048_576),
        "SCIM_MAX_PAGE_SIZE": _int(env, "WORKTEAM_MAX_PAGE_SIZE", 1000),
        "SCIM_DEFAULT_PAGE_SIZE": _int(env, "WORKTEAM_DEFAULT_PAGE_SIZE", 100),
        "SCIM_MAX_FILTER_LENGTH": _int(env, "WORKTEAM_MAX_FILTER_LENGTH", 2000),
        "SCIM_MAX_PATCH_OPERATIONS": _int(env, "WORKTEAM_MAX_PATCH_OPERATIONS", 1000),
        "SCIM_MAX_VALUE_LENGTH": _int(env, "WORKTEAM_MAX_VALUE_LENGTH", 4096),
        # Groups: members returned by one GET /Groups/{id}, and per group in a list response.
        "SCIM_GROUP_MEMBERS_MAX": _int(env, "WORKTEAM_GROUP_MEMBERS_MAX", 10_000),
        "SCIM_LIST_MEMBERS_MAX": _int(env, "WORKTEAM_LIST_MEMBERS_MAX", 1_000),
        # /Bulk (RFC 7644 §3.7), advertised in /ServiceProviderConfig; over either -> 413.
        "SCIM_BULK_SUPPORTED": _bool(env, "WORKTEAM_BULK_SUPPORTED", True),
        "SCIM_BULK_MAX_OPERATIONS": _int(env, "WORKTEAM_BULK_MAX_OPERATIONS", 1000),
        "SCIM_BULK_MAX_PAYLOAD": _int(env, "WORKTEAM_BULK_MAX_PAYLOAD_BYTES", 1_048_576),
        "AUDIT_FLUSH_SECONDS": float(env.get("WORKTEAM_AUDIT_FLUSH_SECONDS", "0.5")),
        # Audit rows older than this are deleted by the worker (tasks/audit.py); 0 keeps them.
        "AUDIT_RETENTION_DAYS": _float(env, "WORKTEAM_AUDIT_RETENTION_DAYS", 90.0),
        "SCIM_CURSOR_TIMEOUT": _int(env, "WORKTEAM_CURSOR_TIMEOUT", 3600),
        "SCIM_DISCOVERY_PUBLIC": _bool(env, "WORKTEAM_DISCOVERY_PUBLIC", False),
        "DB_POOL_SIZE": _int(env, "WORKTEAM_DB_POOL_SIZE", 5),
        "PUBLISH_TIMEOUT": float(env.get("WORKTEAM_PUBLISH_TIMEOUT", "0.5")),
        "PASSWORD_HASH_MEMORY_KIB": _int(env, "WORKTEAM_PASSWORD_HASH_MEMORY_KIB", 19_456),
        "PASSWORD_HASH_TIME_COST": _int(env, "WORKTEAM_PASSWORD_HASH_TIME_COST", 2),
        # Per-token SCIM rate limit (requests/s, 0 = off) and burst (seconds of that rate);
        # an organization's rate_limit overrides the rate. Entra sends up to 25/s per tenant.
        "RATE_LIMIT": _float(env, "WORKTEAM_RATE_LIMIT", 50.0),
        "RATE_BURST_SECONDS": _float(env, "WORKTEAM_RATE_BURST_SECONDS", 2.0),
        "RATE_LIMIT_REDIS_URL": env.get("WORKTEAM_RATE_LIMIT_REDIS_URL") or env["REDIS_URL"],
        # /metrics: a bearer token operators' Prometheus sends (empty: open, for a private
        # network), and how long the database gauges are cached between scrapes.
        "METRICS_TOKEN": env.get("WORKTEAM_METRICS_TOKEN", ""),
        "METRICS_DB_CACHE_SECONDS": _float(env, "WORKTEAM_METRICS_DB_CACHE_SECONDS", 10.0),
    }
