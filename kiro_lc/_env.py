"""kiro-lc's own environment variables (a public contract; constructor arguments win over them)."""

from __future__ import annotations

ENVIRONMENT_VARIABLES = (
    "KIRO_API_KEY",
    "KIRO_ACCESS_TOKEN",
    "KIRO_PROFILE_ARN",
    "KIRO_REGION",
    "KIRO_DB_PATH",
    "KIRO_TOKEN_FILE",
    "KIRO_API_URL",
    "KIRO_AUTH_URL",
    "KIRO_OIDC_URL",
    "KIRO_READ_ONLY",
)
"""Every variable kiro-lc reads; see docs/credentials.md for what each one does."""
