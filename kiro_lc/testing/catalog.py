"""The emulator's model catalogue (ListAvailableModels, §4.2/§B.5) and credit usage
(GetUsageLimits, §4.3/§B.2)."""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kiro_lc.models import KNOWN_MODELS, ModelInfo

_PROMPT_CACHING = {
    "maximumCacheCheckpointsPerRequest": 4,
    "minimumTokensPerCacheCheckpoint": 1024,
    "supportsPromptCaching": True,
}
_SECONDS_PER_DAY = 86_400


def _entry_from_info(info: ModelInfo) -> dict[str, Any]:
    return {
        "description": info.name,
        "modelId": info.model_id,
        "modelName": info.name,
        "promptCaching": dict(_PROMPT_CACHING),
        "rateMultiplier": info.rate_multiplier if info.rate_multiplier is not None else 1.0,
        "rateUnit": "Credit",
        "supportedInputTypes": ["TEXT", "IMAGE"] if info.image_inputs else ["TEXT"],
        "tokenLimits": {
            "maxInputTokens": info.max_input_tokens,
            "maxOutputTokens": info.max_output_tokens or 64_000,
        },
    }


def _generic_entry(model_id: str) -> dict[str, Any]:
    return {
        "description": model_id,
        "modelId": model_id,
        "modelName": model_id,
        "promptCaching": dict(_PROMPT_CACHING),
        "rateMultiplier": 1.0,
        "rateUnit": "Credit",
        "supportedInputTypes": ["TEXT"],
        "tokenLimits": {"maxInputTokens": 200_000, "maxOutputTokens": 64_000},
    }


def build_catalog(extra: Iterable[str | Mapping[str, Any]] = ()) -> list[dict[str, Any]]:
    """Catalogue entries for :data:`kiro_lc.models.KNOWN_MODELS` plus ``extra`` ids or entries.

    An extra entry that is a mapping must hold ``modelId``; its fields override the generic
    defaults (200 000-token window, text only, rate 1.0). An extra id already known replaces it.
    """
    entries = {mid: _entry_from_info(info) for mid, info in KNOWN_MODELS.items()}
    for item in extra:
        if isinstance(item, str):
            entries[item] = _generic_entry(item)
            continue
        model_id = item.get("modelId")
        if not isinstance(model_id, str) or not model_id:
            raise ValueError("a catalogue entry needs a non-empty 'modelId'")
        entries[model_id] = {**_generic_entry(model_id), **dict(item)}
    return list(entries.values())


def window_of(catalog: list[dict[str, Any]], model_id: str) -> int | None:
    """The ``maxInputTokens`` of ``model_id`` in ``catalog``."""
    for entry in catalog:
        if entry.get("modelId") == model_id:
            limits = entry.get("tokenLimits") or {}
            value = limits.get("maxInputTokens")
            return value if isinstance(value, int) else None
    return None


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"emu-page:{offset}".encode()).decode()


def _decode_token(token: str) -> int | None:
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    prefix, _, number = text.partition(":")
    return int(number) if prefix == "emu-page" and number.isdigit() else None


def list_models_page(
    catalog: list[dict[str, Any]], *, max_results: object = None, next_token: object = None
) -> tuple[int, dict[str, Any]]:
    """One ListAvailableModels page: ``(status, body)``; bad paging input → 400."""
    offset = 0
    if next_token not in (None, ""):
        decoded = _decode_token(str(next_token))
        if decoded is None:
            return 400, {"message": "Invalid nextToken.", "reason": None}
        offset = decoded
    size = len(catalog)
    if max_results not in (None, ""):
        try:
            size = int(str(max_results))
        except ValueError:
            size = 0
        if not 1 <= size <= 100:
            return 400, {"message": "maxResults must be between 1 and 100.", "reason": None}
    page = catalog[offset : offset + size]
    more = offset + size < len(catalog)
    default = "auto" if any(e.get("modelId") == "auto" for e in catalog) else "claude-sonnet-4.5"
    return 200, {
        "defaultModel": {"modelId": default},
        "models": page,
        "nextToken": _encode_token(offset + size) if more else None,
    }


@dataclass
class UsageState:
    """Credit usage the emulator reports (and, with ``enforce_limit``, enforces).

    ``used`` grows by each streamed ``meteringEvent``; when ``enforce_limit`` is true and
    ``used >= limit``, GenerateAssistantResponse answers 402 ``MONTHLY_REQUEST_COUNT``.
    """

    used: float = 0.0
    limit: float = 1000.0
    enforce_limit: bool = False
    subscription_title: str = "KIRO PRO"
    subscription_type: str = "Q_DEVELOPER_STANDALONE_PRO"
    days_until_reset: int = 12
    email: str | None = "user@example.com"
    user_id: str = "d-emulator.user"

    def body(self, *, include_email: bool = False) -> dict[str, Any]:
        """A GetUsageLimits response shaped like the captured one (§B.2)."""
        reset = int(time.time()) + self.days_until_reset * _SECONDS_PER_DAY
        breakdown = {
            "bonuses": [],
            "currency": "USD",
            "currentOverages": 0,
            "currentOveragesWithPrecision": 0,
            "currentUsage": int(self.used),
            "currentUsageWithPrecision": round(self.used, 2),
            "displayName": "Credit",
            "displayNamePlural": "Credits",
            "freeTrialInfo": None,
            "nextDateReset": reset,
            "overageCap": int(self.limit),
            "overageCapWithPrecision": self.limit,
            "overageCharges": 0,
            "overageRate": 0.04,
            "resourceType": "CREDIT",
            "unit": "INVOCATIONS",
            "usageLimit": int(self.limit),
            "usageLimitWithPrecision": self.limit,
        }
        return {
            "daysUntilReset": self.days_until_reset,
            "limits": [],
            "nextDateReset": reset,
            "overageConfiguration": {"overageLimit": None, "overageStatus": "DISABLED"},
            "subscriptionInfo": {
                "overageCapability": "OVERAGE_CAPABLE",
                "subscriptionManagementTarget": "MANAGE",
                "subscriptionTitle": self.subscription_title,
                "type": self.subscription_type,
                "upgradeCapability": "UPGRADE_CAPABLE",
            },
            "totalUsage": None,
            "usageBreakdown": None,
            "usageBreakdownList": [breakdown],
            "userInfo": {"email": self.email if include_email else None, "userId": self.user_id},
        }
