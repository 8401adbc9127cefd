"""kiro_lc.models: id resolution, suggestions, and the catalogue / usage parsers (§B.5, §B.2)."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

import pytest

from kiro_lc.models import (
    KNOWN_MODELS,
    ListedModel,
    ModelList,
    friendly_id,
    parse_list_models,
    parse_usage_limits,
    resolve_model_id,
    suggest,
)


@pytest.mark.parametrize(
    ("name", "backend"),
    [
        ("claude-sonnet-4", "claude-sonnet-4"),
        ("claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("CLAUDE_SONNET_4_20250514_V1_0", "claude-sonnet-4"),
        ("claude-sonnet-4-5", "claude-sonnet-4.5"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4.5"),
        ("CLAUDE_SONNET_4_5_20250929_V1_0", "claude-sonnet-4.5"),
        ("claude-sonnet-4.5", "claude-sonnet-4.5"),
        ("claude-haiku-4-5", "claude-haiku-4.5"),
        ("claude-opus-4-5", "claude-opus-4.5"),
        ("claude-opus-4-5-20251101", "claude-opus-4.5"),
        ("sonnet", "claude-sonnet-4.5"),
        ("haiku", "claude-haiku-4.5"),
        ("opus", "claude-opus-4.5"),
        ("Sonnet", "claude-sonnet-4.5"),
        ("auto", "auto"),
        ("claude-opus-4-6", "claude-opus-4.6"),
        # the dot rule for claude ids this table does not know yet
        ("claude-opus-4-9", "claude-opus-4.9"),
        ("claude-sonnet-4-7-20270101", "claude-sonnet-4.7"),
        # everything else passes through unchanged
        ("claude-sonnet-5", "claude-sonnet-5"),
        ("gpt-5.6-sol", "gpt-5.6-sol"),
        ("My-Custom-Model-1-2", "My-Custom-Model-1-2"),
        ("CLAUDE_OPUS_9_V1_0", "CLAUDE_OPUS_9_V1_0"),
    ],
)
def test_resolve_model_id(name: str, backend: str) -> None:
    assert resolve_model_id(name) == backend


@pytest.mark.parametrize(
    ("backend", "friendly"),
    [
        ("claude-sonnet-4.5", "claude-sonnet-4-5"),
        ("claude-sonnet-4", "claude-sonnet-4"),
        ("claude-opus-4.5", "claude-opus-4-5"),
        ("auto", "auto"),
        ("not-a-model", "not-a-model"),
    ],
)
def test_friendly_id(backend: str, friendly: str) -> None:
    assert friendly_id(backend) == friendly


def test_every_friendly_id_resolves_back_to_its_model() -> None:
    for model_id, info in KNOWN_MODELS.items():
        assert info.model_id == model_id
        assert resolve_model_id(model_id) == model_id
        for alias in info.friendly_ids:
            assert resolve_model_id(alias) == model_id
        assert resolve_model_id(friendly_id(model_id)) == model_id


def test_known_model_numbers_follow_the_protocol_doc() -> None:
    assert KNOWN_MODELS["claude-sonnet-4.5"].max_input_tokens == 200_000
    assert KNOWN_MODELS["claude-haiku-4.5"].image_inputs is True
    assert KNOWN_MODELS["auto"].max_input_tokens == 1_000_000
    assert KNOWN_MODELS["claude-opus-5"].max_output_tokens == 128_000
    assert KNOWN_MODELS["deepseek-3.2"].max_input_tokens == 164_000
    opus = KNOWN_MODELS["claude-opus-4.5"]
    assert opus.note is not None
    assert "capacity" in opus.note


def test_suggest() -> None:
    candidates = ["claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-5", "auto"]
    assert suggest("claude-sonet-4-5", candidates)[0] == "claude-sonnet-4-5"
    assert suggest("CLAUDE-HAIKU-4-5", candidates)[0] == "claude-haiku-4-5"
    assert suggest("zzz", candidates) == []
    assert len(suggest("claude-4-5", candidates, limit=2)) <= 2


B5_SAMPLE: dict[str, Any] = {
    "defaultModel": {"modelId": "auto"},
    "models": [
        {
            "description": "(auto-select)",
            "modelId": "auto",
            "modelName": "Auto",
            "promptCaching": {
                "maximumCacheCheckpointsPerRequest": 4,
                "minimumTokensPerCacheCheckpoint": 1024,
                "supportsPromptCaching": True,
            },
            "rateMultiplier": 1.0,
            "rateUnit": "Credit",
            "supportedInputTypes": ["TEXT"],
            "tokenLimits": {"maxInputTokens": 1000000, "maxOutputTokens": 64000},
        },
        {
            "description": "Claude Sonnet 5",
            "modelId": "claude-sonnet-5",
            "modelName": "Claude Sonnet 5",
            "promptCaching": {
                "maximumCacheCheckpointsPerRequest": 4,
                "minimumTokensPerCacheCheckpoint": 1024,
                "supportsPromptCaching": True,
            },
            "rateMultiplier": 1.3,
            "rateUnit": "Credit",
            "supportedInputTypes": ["TEXT", "IMAGE"],
            "tokenLimits": {"maxInputTokens": 1000000, "maxOutputTokens": 64000},
            "additionalModelRequestFieldsSchema": {"type": "object", "properties": {}},
        },
    ],
    "nextToken": None,
}

OPUS5_ENTRY: dict[str, Any] = {
    "modelId": "claude-opus-5",
    "modelName": "Claude Opus 5",
    "rateMultiplier": 2.2,
    "rateUnit": "Credit",
    "tokenLimits": {"maxInputTokens": 1000000, "maxOutputTokens": 128000},
    "additionalModelRequestFieldsSchema": {
        "type": "object",
        "properties": {
            "thinking": {
                "type": "object",
                "properties": {"type": {"type": "string", "enum": ["adaptive", "disabled"]}},
            },
            "max_tokens": {"type": "integer", "minimum": 1024, "maximum": 128000},
        },
        "additionalProperties": False,
    },
}


def test_parse_list_models_b5_sample() -> None:
    listing = parse_list_models(B5_SAMPLE)
    assert listing.default_model_id == "auto"
    assert listing.next_token is None
    assert listing.ids() == ["auto", "claude-sonnet-5"]
    auto, sonnet = listing.models
    assert auto == ListedModel(
        model_id="auto",
        name="Auto",
        description="(auto-select)",
        rate_multiplier=1.0,
        rate_unit="Credit",
        supported_input_types=("TEXT",),
        max_input_tokens=1_000_000,
        max_output_tokens=64_000,
        prompt_caching={
            "maximumCacheCheckpointsPerRequest": 4,
            "minimumTokensPerCacheCheckpoint": 1024,
            "supportsPromptCaching": True,
        },
    )
    assert auto.raw == B5_SAMPLE["models"][0]
    assert auto.image_inputs is False
    assert sonnet.image_inputs is True
    assert sonnet.rate_multiplier == 1.3
    assert sonnet.supports_thinking is False
    assert listing.get("claude-sonnet-5") is sonnet
    assert listing.get("nope") is None


def test_parse_list_models_opus5_entry_and_pagination() -> None:
    first = parse_list_models({"models": [OPUS5_ENTRY], "nextToken": "page-2"})
    assert first.next_token == "page-2"
    assert first.default_model_id is None
    (opus,) = first.models
    assert opus.max_output_tokens == 128_000
    assert opus.supports_thinking is True
    assert opus.supported_input_types == ()
    merged = first.with_page(parse_list_models(B5_SAMPLE))
    assert merged.ids() == ["claude-opus-5", "auto", "claude-sonnet-5"]
    assert merged.default_model_id == "auto"
    assert merged.next_token is None


def test_parse_list_models_tolerates_junk() -> None:
    junk = {
        "defaultModel": "auto",
        "models": [
            {"modelName": "no id"},
            "not an object",
            {"modelId": "m", "tokenLimits": None, "rateMultiplier": "x", "supportedInputTypes": 3},
        ],
        "nextToken": "",
    }
    listing = parse_list_models(junk)
    assert listing == ModelList(models=(ListedModel(model_id="m"),))
    assert parse_list_models({}) == ModelList()


B2_SAMPLE: dict[str, Any] = {
    "daysUntilReset": 0,
    "limits": [],
    "nextDateReset": 1777593600,
    "overageConfiguration": {"overageLimit": None, "overageStatus": "DISABLED"},
    "subscriptionInfo": {
        "overageCapability": "OVERAGE_CAPABLE",
        "subscriptionManagementTarget": "MANAGE",
        "subscriptionTitle": "KIRO POWER",
        "type": "Q_DEVELOPER_STANDALONE_POWER",
        "upgradeCapability": "UPGRADE_INCAPABLE",
    },
    "totalUsage": None,
    "usageBreakdown": None,
    "usageBreakdownList": [
        {
            "bonuses": [],
            "currency": "USD",
            "currentOverages": 0,
            "currentOveragesWithPrecision": 0,
            "currentUsage": 5469,
            "currentUsageWithPrecision": 5469.38,
            "displayName": "Credit",
            "displayNamePlural": "Credits",
            "freeTrialInfo": None,
            "nextDateReset": 1777593600,
            "overageCap": 10000,
            "overageCapWithPrecision": 10000,
            "overageCharges": 0,
            "overageRate": 0.04,
            "resourceType": "CREDIT",
            "unit": "INVOCATIONS",
            "usageLimit": 10000,
            "usageLimitWithPrecision": 10000,
        }
    ],
    "userInfo": {"email": "user@example.com", "userId": "d-<directoryId>.<userSubId>"},
}


def test_parse_usage_limits_b2_sample() -> None:
    usage = parse_usage_limits(B2_SAMPLE)
    assert usage.plan_title == "KIRO POWER"
    assert usage.plan_type == "Q_DEVELOPER_STANDALONE_POWER"
    assert usage.credits_used == 5469.38
    assert usage.credits_limit == 10000.0
    assert usage.credits_remaining == pytest.approx(4530.62)
    assert usage.unit == "Credits"
    assert usage.overage_status == "DISABLED"
    assert usage.overage_rate == 0.04
    assert usage.next_reset == datetime(2026, 5, 1, tzinfo=timezone.utc)
    assert usage.days_until_reset == 0
    assert usage.free_trial is None
    assert usage.email == "user@example.com"
    assert usage.user_id == "d-<directoryId>.<userSubId>"
    assert usage.raw == B2_SAMPLE


def test_parse_usage_limits_free_trial_and_fallbacks() -> None:
    data = copy.deepcopy(B2_SAMPLE)
    del data["nextDateReset"]
    entry = data["usageBreakdownList"][0]
    del entry["currentUsageWithPrecision"]
    entry["freeTrialInfo"] = {
        "currentUsage": 12,
        "usageLimit": 500,
        "freeTrialStatus": "ACTIVE",
        "freeTrialExpiry": 1777593600000,  # milliseconds also accepted
    }
    data["usageBreakdownList"].insert(0, {"resourceType": "OTHER", "currentUsage": 1})
    usage = parse_usage_limits(data)
    assert usage.credits_used == 5469.0
    assert usage.next_reset == datetime(2026, 5, 1, tzinfo=timezone.utc)
    assert usage.free_trial is not None
    assert usage.free_trial.used == 12.0
    assert usage.free_trial.limit == 500.0
    assert usage.free_trial.status == "ACTIVE"
    assert usage.free_trial.expires == datetime(2026, 5, 1, tzinfo=timezone.utc)


def test_parse_usage_limits_tolerates_missing_everything() -> None:
    usage = parse_usage_limits({"usageBreakdownList": "nope", "userInfo": None})
    assert usage.plan_title is None
    assert usage.credits_used is None
    assert usage.credits_remaining is None
    assert usage.next_reset is None
    assert usage.raw == {"usageBreakdownList": "nope", "userInfo": None}
