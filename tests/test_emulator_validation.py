"""Strict request validation (kiro-protocol.md §3.4): one valid baseline built from the real
kiro-cli 2.15.2 capture, then one mutation per rule, each answered with Kiro's error body and
logged with a readable reason."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from captures import capture_sample

from kiro_lc.testing import KiroEmulator

GAR_TARGET = "AmazonCodeWhispererStreamingService.GenerateAssistantResponse"
MODEL = "claude-sonnet-4.5"
IMPROPER = {"message": "Improperly formed request.", "reason": None}
PNG_B64 = (  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)

Body = dict[str, Any]


def _baseline() -> Body:
    body: Body = capture_sample(GAR_TARGET)["body"]
    state = body["conversationState"]
    state["currentMessage"]["userInputMessage"]["modelId"] = MODEL
    for entry in state["history"]:
        if "userInputMessage" in entry:
            entry["userInputMessage"]["modelId"] = MODEL
    return body


BASELINE = _baseline()


@pytest.fixture(scope="module")
def emu() -> Iterator[KiroEmulator]:
    with KiroEmulator(disabled_models={"claude-opus-4.5"}, max_request_bytes=300_000) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as client:
        yield client


def send(emu: KiroEmulator, http: httpx.Client, body: Body | bytes) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    headers = {
        "content-type": "application/x-amz-json-1.0",
        "x-amz-target": GAR_TARGET,
        "authorization": f"Bearer {emu.api_key}",
        "tokentype": "API_KEY",
    }
    return http.post(emu.base_url + "/", content=content, headers=headers)


# ---------------------------------------------------------------------------------------------
# mutation helpers
# ---------------------------------------------------------------------------------------------


def state(body: Body) -> Body:
    return body["conversationState"]  # type: ignore[no-any-return]


def current(body: Body) -> Body:
    return state(body)["currentMessage"]["userInputMessage"]  # type: ignore[no-any-return]


def tools(body: Body) -> list[Body]:
    return current(body)["userInputMessageContext"]["tools"]  # type: ignore[no-any-return]


def spec(body: Body, i: int = 0) -> Body:
    return tools(body)[i]["toolSpecification"]  # type: ignore[no-any-return]


def user(text: str) -> Body:
    return {"userInputMessage": {"content": text, "modelId": MODEL, "origin": "KIRO_CLI"}}


def assistant(text: str, *uses: tuple[str, str]) -> Body:
    message: Body = {"content": text}
    if uses:
        message["toolUses"] = [{"toolUseId": i, "name": n, "input": {"path": "."}} for i, n in uses]
    return {"assistantResponseMessage": message}


def result(tool_use_id: str, text: str = "ok") -> Body:
    return {"toolUseId": tool_use_id, "content": [{"text": text}], "status": "success"}


def tool_round(
    body: Body,
    *,
    uses: tuple[tuple[str, str], ...] = (("tooluse_a", "fs_read"),),
    results: list[Body],
) -> None:
    """History gains 'read it' / assistant tool uses; the current message carries ``results``."""
    state(body)["history"] += [user("read it"), assistant(" ", *uses)]
    current(body)["content"] = ""
    current(body)["userInputMessageContext"]["toolResults"] = results


def mutate(fn: Callable[[Body], Any]) -> Body:
    body = copy.deepcopy(BASELINE)
    fn(body)
    return body


# ---------------------------------------------------------------------------------------------
# the table
# ---------------------------------------------------------------------------------------------

SHAPE = (400, IMPROPER)
PAIRING = (400, {"message": "Improperly formed request.", "reason": "TOOL_USE_RESULT_MISMATCH"})
BAD_MODEL = (
    400,
    {
        "message": "Invalid model. Please select a different model to continue.",
        "reason": "INVALID_MODEL_ID",
    },
)

CASES: list[tuple[str, Callable[[Body], Any], tuple[int, dict[str, Any]], str]] = [
    (
        "system-prompt-top",
        lambda b: b.update(systemPrompt="be nice"),
        SHAPE,
        "$.systemPrompt: systemPrompt is not a Kiro field",
    ),
    (
        "system-prompt-nested",
        lambda b: state(b).update(systemPrompt=[{"text": "x"}]),
        SHAPE,
        "$.conversationState.systemPrompt",
    ),
    ("no-state", lambda b: b.pop("conversationState"), SHAPE, "conversationState is missing"),
    (
        "assistant-current",
        lambda b: state(b).update(currentMessage={"assistantResponseMessage": {"content": "hi"}}),
        SHAPE,
        "the current message must be a user turn",
    ),
    (
        "empty-content",
        lambda b: current(b).update(content=""),
        SHAPE,
        "currentMessage: empty content with no tool results",
    ),
    (
        "content-not-string",
        lambda b: current(b).update(content=None),
        SHAPE,
        "currentMessage: content must be a string",
    ),
    (
        "unknown-model",
        lambda b: current(b).update(modelId="gpt-4o"),
        BAD_MODEL,
        "modelId 'gpt-4o' is not a known model",
    ),
    ("missing-model", lambda b: current(b).pop("modelId"), BAD_MODEL, "modelId is missing"),
    (
        "disabled-model",
        lambda b: current(b).update(modelId="claude-opus-4.5"),
        (
            429,
            {
                "message": "I am experiencing high traffic, please try again shortly.",
                "reason": "INSUFFICIENT_MODEL_CAPACITY",
            },
        ),
        "model 'claude-opus-4.5' is disabled",
    ),
    (
        "missing-origin",
        lambda b: current(b).pop("origin"),
        SHAPE,
        "currentMessage: origin is missing",
    ),
    ("cli-origin", lambda b: current(b).update(origin="CLI"), SHAPE, "origin 'CLI' drops metering"),
    ("odd-origin", lambda b: current(b).update(origin="VSCODE"), SHAPE, "unknown origin 'VSCODE'"),
    (
        "history-starts-with-assistant",
        lambda b: state(b).update(history=[*state(b)["history"][1:], user("x"), assistant("y")]),
        SHAPE,
        "history[0]: history must start with a user message",
    ),
    (
        "two-assistants",
        lambda b: state(b)["history"].insert(2, assistant("again")),
        SHAPE,
        "history[2]: two consecutive assistant messages",
    ),
    (
        "history-ends-with-user",
        lambda b: state(b)["history"].append(user("dangling")),
        SHAPE,
        "history[2]: two consecutive user messages",
    ),
    (
        "bad-history-entry",
        lambda b: state(b)["history"].insert(1, {"systemMessage": {"content": "x"}}),
        SHAPE,
        "history[1]: needs exactly one userInputMessage or assistantResponseMessage object",
    ),
    (
        "history-user-empty",
        lambda b: state(b)["history"][0]["userInputMessage"].update(content=""),
        SHAPE,
        "history[0]: empty content with no tool results",
    ),
    (
        "unanswered-tool-use",
        lambda b: (tool_round(b, results=[]), current(b).update(content="go on")),
        PAIRING,
        "currentMessage: tool use 'tooluse_a' of the previous assistant message has no result",
    ),
    (
        "unknown-result-id",
        lambda b: tool_round(b, results=[result("tooluse_a"), result("tooluse_zzz")]),
        PAIRING,
        "tool result 'tooluse_zzz' answers no tool use of the immediately preceding assistant",
    ),
    (
        "duplicate-result",
        lambda b: tool_round(b, results=[result("tooluse_a"), result("tooluse_a")]),
        PAIRING,
        "currentMessage: duplicate tool result for 'tooluse_a'",
    ),
    (
        "result-two-turns-late",
        lambda b: (
            state(b)["history"].extend(
                [
                    user("read"),
                    assistant(" ", ("tooluse_a", "fs_read")),
                    user("wait"),
                    assistant("ok"),
                ]
            ),
            current(b)["userInputMessageContext"].update(toolResults=[result("tooluse_a")]),
        ),
        PAIRING,
        "history[4]: tool use 'tooluse_a' of the previous assistant message has no result",
    ),
    (
        "undeclared-history-tool",
        lambda b: tool_round(
            b, uses=(("tooluse_a", "launch_rocket"),), results=[result("tooluse_a")]
        ),
        SHAPE,
        "history[3]: uses tool 'launch_rocket', which the current tools do not declare",
    ),
    (
        "tool-use-input-not-object",
        lambda b: (
            tool_round(b, results=[result("tooluse_a")]),
            state(b)["history"][-1]["assistantResponseMessage"]["toolUses"][0].update(input="{}"),
        ),
        SHAPE,
        "history[3].toolUses[0]: input must be a JSON object",
    ),
    (
        "long-tool-name",
        lambda b: spec(b).update(name="t" * 65),
        SHAPE,
        "tool name must be 1..64 characters",
    ),
    (
        "empty-tool-name",
        lambda b: spec(b).update(name=""),
        SHAPE,
        "currentMessage.tools[0]: tool name must be 1..64",
    ),
    (
        "empty-description",
        lambda b: spec(b).update(description=" "),
        SHAPE,
        "tool description must be a non-empty string",
    ),
    (
        "long-description",
        lambda b: spec(b).update(description="d" * 10_001),
        SHAPE,
        "tool description is 10001 characters, over the 10000-character limit",
    ),
    (
        "schema-not-object",
        lambda b: spec(b).update(inputSchema={"json": "{}"}),
        SHAPE,
        "inputSchema.json must be a JSON object",
    ),
    (
        "missing-schema",
        lambda b: spec(b).pop("inputSchema"),
        SHAPE,
        "inputSchema.json must be a JSON object",
    ),
    (
        "cache-point",
        lambda b: tools(b).append({"cachePoint": {"type": "default"}}),
        SHAPE,
        "cachePoint entries are not accepted",
    ),
    (
        "duplicate-tool",
        lambda b: tools(b).append(
            {"toolSpecification": {**spec(b), "name": spec(b)["name"].upper()}}
        ),
        SHAPE,
        "duplicate tool name 'CODE'",
    ),
    (
        "bad-image-format",
        lambda b: current(b).update(images=[{"format": "bmp", "source": {"bytes": PNG_B64}}]),
        SHAPE,
        "currentMessage.images[0]: format 'bmp' is not png, jpeg, gif or webp",
    ),
    (
        "bad-image-bytes",
        lambda b: current(b).update(images=[{"format": "png", "source": {"bytes": "not base64!"}}]),
        SHAPE,
        "currentMessage.images[0]: source.bytes is not valid base64",
    ),
    (
        "thinking-with-results",
        lambda b: (
            tool_round(b, results=[result("tooluse_a")]),
            current(b).update(content="<thinking>hmm</thinking>"),
        ),
        SHAPE,
        "thinking tags in a message that carries toolResults",
    ),
    (
        "too-large",
        lambda b: current(b).update(content="x" * 300_000),
        (400, {"message": "Input is too long.", "reason": "CONTENT_LENGTH_EXCEEDS_THRESHOLD"}),
        "over the 300000-byte limit",
    ),
]

VALID: list[tuple[str, Callable[[Body], Any]]] = [
    ("capture-baseline", lambda b: None),
    ("tool-round", lambda b: tool_round(b, results=[result("tooluse_a")])),
    (
        "tool-round-case-insensitive",
        lambda b: tool_round(b, uses=(("tooluse_a", "FS_READ"),), results=[result("tooluse_a")]),
    ),
    (
        "two-parallel-tool-uses",
        lambda b: tool_round(
            b,
            uses=(("tooluse_a", "fs_read"), ("tooluse_b", "grep")),
            results=[result("tooluse_b"), result("tooluse_a")],
        ),
    ),
    (
        "png-image",
        lambda b: current(b).update(images=[{"format": "png", "source": {"bytes": PNG_B64}}]),
    ),
    (
        "no-history-no-tools",
        lambda b: (state(b).pop("history"), current(b).pop("userInputMessageContext")),
    ),
    ("ai-editor-origin", lambda b: current(b).update(origin="AI_EDITOR")),
]


@pytest.mark.parametrize(("name", "fn"), VALID, ids=[c[0] for c in VALID])
def test_valid_requests_pass(
    emu: KiroEmulator, http: httpx.Client, name: str, fn: Callable[[Body], Any]
) -> None:
    response = send(emu, http, mutate(fn))
    assert response.status_code == 200, emu.requests[-1].problems
    assert emu.requests[-1].problems == []


@pytest.mark.parametrize(("name", "fn", "expected", "detail"), CASES, ids=[c[0] for c in CASES])
def test_each_rule(
    emu: KiroEmulator,
    http: httpx.Client,
    caplog: pytest.LogCaptureFixture,
    name: str,
    fn: Callable[[Body], Any],
    expected: tuple[int, dict[str, Any]],
    detail: str,
) -> None:
    caplog.set_level(logging.DEBUG, logger="kiro_lc.testing")
    pending = emu.pending
    response = send(emu, http, mutate(fn))
    status, body = expected
    assert (response.status_code, response.json()) == (status, body)
    record = emu.requests[-1]
    assert record.status == status
    assert any(detail in problem for problem in record.problems), record.problems
    assert detail in caplog.text  # logged at DEBUG
    assert emu.pending == pending  # a rejected request consumes no scripted reply


def test_body_that_is_not_json(emu: KiroEmulator, http: httpx.Client) -> None:
    response = send(emu, http, b"{not json")
    assert (response.status_code, response.json()) == (400, IMPROPER)
    assert emu.requests[-1].problems == ["body is not valid JSON"]
    response = send(emu, http, b"[1, 2]")
    assert emu.requests[-1].problems == ["body is not a JSON object"]


def test_non_strict_records_but_answers() -> None:
    with KiroEmulator(strict=False) as emu, httpx.Client(timeout=5.0) as http:
        body = mutate(lambda b: (current(b).update(origin="CLI"), b.update(systemPrompt="x")))
        response = send(emu, http, body)
        assert response.status_code == 200
        problems = emu.requests[-1].problems
        assert len(problems) == 2
        assert any("systemPrompt" in p for p in problems)
        assert send(emu, http, b"garbage").status_code == 200


def test_profile_arn_required_when_asked() -> None:
    with KiroEmulator(require_profile_arn=True) as emu, httpx.Client(timeout=5.0) as http:
        acct = emu.add_account("alice", kind="social")
        headers = {
            "x-amz-target": GAR_TARGET,
            "authorization": f"Bearer {emu.issue_access_token(acct)}",
        }
        body = mutate(lambda b: b.pop("profileArn"))
        missing = http.post(emu.base_url + "/", content=json.dumps(body), headers=headers)
        assert missing.status_code == 400
        assert missing.json()["message"] == "profileArn is required for this request."
        body["profileArn"] = acct.profile_arn
        assert (
            http.post(emu.base_url + "/", content=json.dumps(body), headers=headers).status_code
            == 200
        )
