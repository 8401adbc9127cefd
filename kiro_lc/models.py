"""Kiro model ids, aliases and limits, plus parsers for the model catalogue and usage limits.

Pure: no I/O. Kiro's backend ids use a dot between version digits (``claude-sonnet-4.5``); users
type Anthropic-style ids (``claude-sonnet-4-5``, ``claude-sonnet-4-5-20250929``) or short aliases
(``sonnet``). :func:`resolve_model_id` maps all of them; anything unknown passes through so that
new models work before this table learns about them (kiro-protocol.md §4.1).

:data:`KNOWN_MODELS` only holds numbers kiro-protocol.md gives a source for; prefer the live
catalogue (:func:`parse_list_models`, §4.2) and the usage report (:func:`parse_usage_limits`,
§4.3) when they are available.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

__all__ = [
    "KNOWN_MODELS",
    "FreeTrial",
    "ListedModel",
    "ModelInfo",
    "ModelList",
    "UsageLimits",
    "friendly_id",
    "parse_list_models",
    "parse_usage_limits",
    "resolve_model_id",
    "suggest",
]


@dataclass(frozen=True)
class ModelInfo:
    """What kiro-lc knows about one backend model without asking Kiro.

    ``friendly_ids`` lists the Anthropic-style ids that resolve to ``model_id``; the first one is
    canonical (what :func:`friendly_id` returns). ``rate_multiplier`` is the credit multiplier
    (``None`` when no source gives it); ``note`` carries caveats such as capacity limits.
    """

    model_id: str
    name: str
    friendly_ids: tuple[str, ...]
    max_input_tokens: int
    max_output_tokens: int | None
    image_inputs: bool
    rate_multiplier: float | None = None
    note: str | None = None


def _claude(
    model_id: str,
    name: str,
    friendly: tuple[str, ...],
    window: int,
    max_output: int | None,
    *,
    rate: float | None = None,
    note: str | None = None,
) -> ModelInfo:
    return ModelInfo(model_id, name, friendly, window, max_output, True, rate, note)


# Sources: kiro-protocol.md §4.1 (windows: cpa, jw; 1M for 4.6+: kiro.rs), §B.5 (catalogue
# samples for auto, sonnet-5, opus-5), §B.4 (windows of the non-Claude models).
_MODELS: tuple[ModelInfo, ...] = (
    ModelInfo(
        "auto",
        "Auto",
        ("auto",),
        1_000_000,
        64_000,
        False,
        1.0,
        "Kiro picks the model per request; the catalogue sample lists text input only.",
    ),
    _claude(
        "claude-sonnet-4",
        "Claude Sonnet 4",
        ("claude-sonnet-4", "claude-sonnet-4-20250514", "CLAUDE_SONNET_4_20250514_V1_0"),
        200_000,
        64_000,
    ),
    _claude(
        "claude-sonnet-4.5",
        "Claude Sonnet 4.5",
        ("claude-sonnet-4-5", "claude-sonnet-4-5-20250929", "CLAUDE_SONNET_4_5_20250929_V1_0"),
        200_000,
        64_000,
    ),
    _claude(
        "claude-haiku-4.5",
        "Claude Haiku 4.5",
        ("claude-haiku-4-5", "claude-haiku-4-5-20251001"),
        200_000,
        64_000,
    ),
    _claude(
        "claude-opus-4.5",
        "Claude Opus 4.5",
        ("claude-opus-4-5", "claude-opus-4-5-20251101"),
        200_000,
        64_000,
        note="Kiro has disabled it for capacity at times; claude-sonnet-4-5 is the fallback.",
    ),
    _claude("claude-sonnet-4.6", "Claude Sonnet 4.6", ("claude-sonnet-4-6",), 1_000_000, None),
    _claude("claude-opus-4.6", "Claude Opus 4.6", ("claude-opus-4-6",), 1_000_000, None),
    _claude("claude-opus-4.7", "Claude Opus 4.7", ("claude-opus-4-7",), 1_000_000, None),
    _claude("claude-opus-4.8", "Claude Opus 4.8", ("claude-opus-4-8",), 1_000_000, None),
    _claude(
        "claude-sonnet-5", "Claude Sonnet 5", ("claude-sonnet-5",), 1_000_000, 64_000, rate=1.3
    ),
    _claude("claude-opus-5", "Claude Opus 5", ("claude-opus-5",), 1_000_000, 128_000, rate=2.2),
    ModelInfo("deepseek-3.2", "DeepSeek 3.2", ("deepseek-3.2",), 164_000, None, False),
    ModelInfo("minimax-m2.5", "MiniMax M2.5", ("minimax-m2.5",), 196_000, None, False),
    ModelInfo("qwen3-coder-next", "Qwen3 Coder Next", ("qwen3-coder-next",), 256_000, None, False),
)

KNOWN_MODELS: dict[str, ModelInfo] = {m.model_id: m for m in _MODELS}
"""Backend model id → :class:`ModelInfo`, for the models kiro-protocol.md documents."""

_SHORT_ALIASES = {
    "sonnet": "claude-sonnet-4.5",
    "haiku": "claude-haiku-4.5",
    "opus": "claude-opus-4.5",
}

_ALIASES: dict[str, str] = {
    **{m.model_id: m.model_id for m in _MODELS},
    **{alias: m.model_id for m in _MODELS for alias in m.friendly_ids},
    **_SHORT_ALIASES,
}
_ALIASES_FOLDED = {k.lower(): v for k, v in _ALIASES.items()}

# claude-<family>-N-M[-YYYYMMDD] → claude-<family>-N.M (the rule peers use; §4.1)
_VERSION_DASH = re.compile(r"^(claude-[a-z]+)-(\d+)-(\d+)(?:-\d{8})?$")


def resolve_model_id(name: str) -> str:
    """Map a friendly id, alias, dated or legacy id to Kiro's backend model id.

    Known names match case-insensitively; unknown ``claude-x-N-M`` names get the dot rule
    (``claude-opus-4-9`` → ``claude-opus-4.9``); everything else is returned unchanged.
    """
    found = _ALIASES.get(name) or _ALIASES_FOLDED.get(name.strip().lower())
    if found is not None:
        return found
    match = _VERSION_DASH.match(name)
    if match:
        return f"{match[1]}-{match[2]}.{match[3]}"
    return name


def friendly_id(model_id: str) -> str:
    """The canonical Anthropic-style id of a backend model (``claude-sonnet-4.5`` →
    ``claude-sonnet-4-5``); unknown ids are returned unchanged."""
    info = KNOWN_MODELS.get(model_id)
    return info.friendly_ids[0] if info else model_id


def suggest(name: str, candidates: Iterable[str], *, limit: int = 3) -> list[str]:
    """Close matches for ``name`` among ``candidates`` (case-insensitive), best first, for
    "did you mean ...?" hints."""
    by_folded: dict[str, str] = {}
    for candidate in candidates:
        by_folded.setdefault(candidate.lower(), candidate)
    matches = difflib.get_close_matches(name.lower(), list(by_folded), n=limit, cutoff=0.6)
    return [by_folded[m] for m in matches]


# ---------------------------------------------------------------------------------------------
# ListAvailableModels (kiro-protocol.md §4.2, §B.5)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListedModel:
    """One entry of Kiro's model catalogue; ``raw`` keeps the entry as received."""

    model_id: str
    name: str | None = None
    description: str | None = None
    rate_multiplier: float | None = None
    rate_unit: str | None = None
    supported_input_types: tuple[str, ...] = ()
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    prompt_caching: dict[str, Any] | None = None
    additional_model_request_fields_schema: dict[str, Any] | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def image_inputs(self) -> bool:
        """Whether the catalogue says the model accepts images."""
        return "IMAGE" in self.supported_input_types

    @property
    def supports_thinking(self) -> bool:
        """Whether the model advertises native ``thinking`` request fields (§3.6)."""
        props = (self.additional_model_request_fields_schema or {}).get("properties")
        return isinstance(props, dict) and "thinking" in props


@dataclass(frozen=True)
class ModelList:
    """A ListAvailableModels page (or several merged with :meth:`with_page`)."""

    models: tuple[ListedModel, ...] = ()
    default_model_id: str | None = None
    next_token: str | None = None

    def ids(self) -> list[str]:
        """The backend ids of the listed models, in catalogue order."""
        return [m.model_id for m in self.models]

    def get(self, model_id: str) -> ListedModel | None:
        """The entry for ``model_id`` (after :func:`resolve_model_id`), or ``None``."""
        wanted = resolve_model_id(model_id)
        return next((m for m in self.models if m.model_id in (model_id, wanted)), None)

    def with_page(self, page: ModelList) -> ModelList:
        """This list followed by the next page; the next page's ``next_token`` wins."""
        return ModelList(
            models=self.models + page.models,
            default_model_id=self.default_model_id or page.default_model_id,
            next_token=page.next_token,
        )


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _num(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _int(value: object) -> int | None:
    number = _num(value)
    return int(number) if number is not None else None


def _dict(value: object) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def _listed_model(entry: Mapping[str, Any]) -> ListedModel | None:
    model_id = _str(entry.get("modelId"))
    if not model_id:
        return None
    limits = _dict(entry.get("tokenLimits")) or {}
    input_types = entry.get("supportedInputTypes")
    return ListedModel(
        model_id=model_id,
        name=_str(entry.get("modelName")),
        description=_str(entry.get("description")),
        rate_multiplier=_num(entry.get("rateMultiplier")),
        rate_unit=_str(entry.get("rateUnit")),
        supported_input_types=tuple(
            t for t in (input_types if isinstance(input_types, list) else []) if isinstance(t, str)
        ),
        max_input_tokens=_int(limits.get("maxInputTokens")),
        max_output_tokens=_int(limits.get("maxOutputTokens")),
        prompt_caching=_dict(entry.get("promptCaching")),
        additional_model_request_fields_schema=_dict(
            entry.get("additionalModelRequestFieldsSchema")
        ),
        raw=dict(entry),
    )


def parse_list_models(data: Mapping[str, Any]) -> ModelList:
    """Parse a ListAvailableModels response; missing or odd fields become ``None``/empty and
    entries without a ``modelId`` are skipped."""
    entries = data.get("models")
    listed = (_listed_model(e) for e in (entries if isinstance(entries, list) else []) if _dict(e))
    default = _dict(data.get("defaultModel")) or {}
    return ModelList(
        models=tuple(m for m in listed if m is not None),
        default_model_id=_str(default.get("modelId")),
        next_token=_str(data.get("nextToken")) or None,
    )


# ---------------------------------------------------------------------------------------------
# GetUsageLimits (kiro-protocol.md §4.3, §B.2)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FreeTrial:
    """The free-trial allowance inside a usage breakdown (``freeTrialInfo``)."""

    used: float | None
    limit: float | None
    status: str | None
    expires: datetime | None


@dataclass(frozen=True)
class UsageLimits:
    """The account's plan and credit usage; ``raw`` keeps the whole response.

    Credit figures prefer the ``...WithPrecision`` fields. ``next_reset`` is timezone-aware UTC.
    """

    plan_title: str | None = None
    plan_type: str | None = None
    credits_used: float | None = None
    credits_limit: float | None = None
    unit: str | None = None
    overage_status: str | None = None
    overage_rate: float | None = None
    next_reset: datetime | None = None
    days_until_reset: int | None = None
    free_trial: FreeTrial | None = None
    email: str | None = None
    user_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def credits_remaining(self) -> float | None:
        """Credits left this period (never negative), or ``None`` when unknown."""
        if self.credits_used is None or self.credits_limit is None:
            return None
        return max(self.credits_limit - self.credits_used, 0.0)


def _epoch(value: object) -> datetime | None:
    number = _num(value)
    if number is None:
        return None
    if number > 1e11:  # milliseconds, not seconds
        number /= 1000
    try:
        return datetime.fromtimestamp(number, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def _precise(entry: Mapping[str, Any], name: str) -> float | None:
    precise = _num(entry.get(f"{name}WithPrecision"))
    return precise if precise is not None else _num(entry.get(name))


def _credit_breakdown(data: Mapping[str, Any]) -> dict[str, Any]:
    listed = data.get("usageBreakdownList")
    entries = [e for e in (listed if isinstance(listed, list) else []) if isinstance(e, dict)]
    for wanted in ("CREDIT", "AGENTIC_REQUEST"):
        for entry in entries:
            if entry.get("resourceType") == wanted:
                return entry
    return entries[0] if entries else {}


def _free_trial(value: object) -> FreeTrial | None:
    info = _dict(value)
    if info is None:
        return None
    return FreeTrial(
        used=_precise(info, "currentUsage"),
        limit=_precise(info, "usageLimit"),
        status=_str(info.get("freeTrialStatus")),
        expires=_epoch(info.get("freeTrialExpiry")),
    )


def parse_usage_limits(data: Mapping[str, Any]) -> UsageLimits:
    """Parse a GetUsageLimits response, tolerating missing fields (they become ``None``)."""
    breakdown = _credit_breakdown(data)
    subscription = _dict(data.get("subscriptionInfo")) or {}
    overage = _dict(data.get("overageConfiguration")) or {}
    user = _dict(data.get("userInfo")) or {}
    return UsageLimits(
        plan_title=_str(subscription.get("subscriptionTitle")),
        plan_type=_str(subscription.get("type")),
        credits_used=_precise(breakdown, "currentUsage"),
        credits_limit=_precise(breakdown, "usageLimit"),
        unit=_str(breakdown.get("displayNamePlural")) or _str(breakdown.get("unit")),
        overage_status=_str(overage.get("overageStatus")),
        overage_rate=_num(breakdown.get("overageRate")),
        next_reset=_epoch(data.get("nextDateReset")) or _epoch(breakdown.get("nextDateReset")),
        days_until_reset=_int(data.get("daysUntilReset")),
        free_trial=_free_trial(breakdown.get("freeTrialInfo")),
        email=_str(user.get("email")),
        user_id=_str(user.get("userId")),
        raw=dict(data),
    )
