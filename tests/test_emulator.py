"""KiroEmulator over real loopback sockets: wire format (decoded by botocore, not by kiro-lc),
endpoints in both wire styles, accounts and refresh, scripted replies and faults, the default
responder, and the request log."""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer

from kiro_lc.testing import Fault, KiroEmulator, Reply
from kiro_lc.testing.responder import args_from_schema, default_reply

GAR_TARGET = "AmazonCodeWhispererStreamingService.GenerateAssistantResponse"
MODELS_TARGET = "AmazonCodeWhispererService.ListAvailableModels"
USAGE_TARGET = "AmazonCodeWhispererService.GetUsageLimits"
HTTP = httpx.Client(timeout=5.0)  # one client: building an SSL context per call costs ~50 ms
BEARER_INVALID = {"message": "The bearer token included in the request is invalid.", "reason": None}


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def emu() -> Iterator[KiroEmulator]:
    with KiroEmulator() as emulator:
        yield emulator


def key_headers(emu: KiroEmulator) -> dict[str, str]:
    return {"Authorization": f"Bearer {emu.api_key}", "tokentype": "API_KEY"}


def gar_body(
    text: str = "hi",
    *,
    model: str = "claude-sonnet-4.5",
    tools: list[dict[str, Any]] | None = None,
    history: list[dict[str, Any]] | None = None,
    tool_results: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    ctx: dict[str, Any] = {}
    if tools:
        ctx["tools"] = [{"toolSpecification": t} for t in tools]
    if tool_results:
        ctx["toolResults"] = tool_results
    message: dict[str, Any] = {"content": text, "modelId": model, "origin": "KIRO_CLI"}
    if ctx:
        message["userInputMessageContext"] = ctx
    state: dict[str, Any] = {
        "chatTriggerType": "MANUAL",
        "currentMessage": {"userInputMessage": message},
    }
    if history:
        state["history"] = history
    return {"conversationState": state}


def tool(name: str, schema: dict[str, Any], description: str = "A tool.") -> dict[str, Any]:
    return {"name": name, "description": description, "inputSchema": {"json": schema}}


def post_gar(
    emu: KiroEmulator,
    body: dict[str, Any],
    *,
    headers: dict[str, str] | None = None,
    timeout: float = 5.0,
) -> httpx.Response:
    all_headers = {
        "content-type": "application/x-amz-json-1.0",
        "x-amz-target": GAR_TARGET,
        **(key_headers(emu) if headers is None else headers),
    }
    return HTTP.post(
        emu.base_url + "/", content=json.dumps(body), headers=all_headers, timeout=timeout
    )


def decode(data: bytes) -> list[tuple[str, str, Any]]:
    """(message-type, event or exception type, JSON payload) of every frame, via botocore."""
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    out = []
    for message in buffer:
        headers = message.headers
        kind = (
            headers.get(":event-type")
            or headers.get(":exception-type")
            or headers.get(":error-code")
        )
        payload = json.loads(message.payload) if message.payload else None
        out.append((headers[":message-type"], kind, payload))
    return out


def text_of(frames: list[tuple[str, str, Any]]) -> str:
    return "".join(
        p.get("content", "") for _, kind, p in frames if kind == "assistantResponseEvent"
    )


def tool_input(
    frames: list[tuple[str, str, Any]], tool_use_id: str | None = None
) -> dict[str, Any]:
    pieces = [
        p["input"]
        for _, kind, p in frames
        if kind == "toolUseEvent" and (tool_use_id is None or p["toolUseId"] == tool_use_id)
    ]
    return json.loads("".join(p if isinstance(p, str) else "" for p in pieces) or "{}")


def drain(response: httpx.Response, into: list[bytes]) -> None:
    """Read raw body bytes into ``into`` until the stream ends or the read times out."""
    into.extend(response.iter_raw())


class RawResponse:
    """A response read byte by byte from a plain socket, chunked encoding undone by hand."""

    def __init__(self, data: bytes) -> None:
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {
            k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
        }
        self.chunks: list[bytes] = []
        self.complete = False
        while rest:
            size_line, sep, rest = rest.partition(b"\r\n")
            if not sep:
                break
            size = int(size_line, 16)
            if size == 0:
                self.complete = True
                break
            if len(rest) < size:
                self.chunks.append(rest)
                break
            self.chunks.append(rest[:size])
            rest = rest[size + 2 :]
        self.body = b"".join(self.chunks)


def raw_gar(emu: KiroEmulator, body: dict[str, Any], *, timeout: float = 5.0) -> RawResponse:
    payload = json.dumps(body).encode()
    request = (
        f"POST / HTTP/1.1\r\nHost: {emu.host}\r\nContent-Type: application/x-amz-json-1.0\r\n"
        f"X-Amz-Target: {GAR_TARGET}\r\nAuthorization: Bearer {emu.api_key}\r\n"
        f"tokentype: API_KEY\r\nContent-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    ).encode() + payload
    with socket.create_connection((emu.host, emu.port), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return RawResponse(data)


# ---------------------------------------------------------------------------------------------
# wire format
# ---------------------------------------------------------------------------------------------


def test_botocore_decodes_default_reply_in_kiro_order(emu: KiroEmulator) -> None:
    response = post_gar(emu, gar_body())
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.amazon.eventstream"
    assert response.headers["transfer-encoding"] == "chunked"
    assert re.fullmatch(r"[0-9a-f-]{36}", response.headers["x-amzn-requestid"])
    frames = decode(response.content)
    kinds = [kind for _, kind, _ in frames]
    assert kinds[-3:] == ["metadataEvent", "contextUsageEvent", "meteringEvent"]
    assert set(kinds[:-3]) == {"assistantResponseEvent"}
    assert len(kinds) > 4
    assert text_of(frames) == "Hello from the Kiro emulator (claude-sonnet-4.5)."
    assert frames[-3][2] == {"stopReason": "END_TURN"}
    assert frames[-1][2] == {
        "unit": "credit",
        "unitPlural": "credits",
        "usage": 0.02730794364842454,
    }
    assert all(mtype == "event" for mtype, _, _ in frames)


def test_frames_are_split_across_http_chunks() -> None:
    with KiroEmulator(split_frames=1.0) as emu:
        split = raw_gar(emu, gar_body())
    with KiroEmulator(split_frames=0.0) as emu:
        whole = raw_gar(emu, gar_body())
    assert split.complete
    assert whole.complete
    assert split.headers["transfer-encoding"] == "chunked"
    frame_count = len(decode(whole.body))
    assert len(whole.chunks) == frame_count  # one chunk per frame
    assert len(split.chunks) == 2 * frame_count  # every frame cut in two
    assert [m[1] for m in decode(split.body)] == [m[1] for m in decode(whole.body)]
    first = EventStreamBuffer()
    first.add_data(split.chunks[0])
    assert list(first) == []  # the first chunk alone is a partial frame


def test_frame_splitting_is_deterministic_per_seed() -> None:
    sizes = []
    for _ in range(2):
        with KiroEmulator(split_frames=0.5, seed=7) as emu:
            sizes.append([len(c) for c in raw_gar(emu, gar_body()).chunks])
    assert sizes[0] == sizes[1]


def test_keep_alive_serves_two_requests_on_one_connection(emu: KiroEmulator) -> None:
    payload = json.dumps(gar_body()).encode()
    request = (
        f"POST /generateAssistantResponse HTTP/1.1\r\nHost: {emu.host}\r\n"
        f"Content-Type: application/json\r\nAuthorization: Bearer {emu.api_key}\r\n"
        f"tokentype: API_KEY\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode() + payload
    with socket.create_connection((emu.host, emu.port), timeout=5) as sock:
        for _ in range(2):
            sock.sendall(request)
            data = b""
            while not data.endswith(b"\r\n0\r\n\r\n"):
                chunk = sock.recv(65536)
                assert chunk, "the emulator closed a keep-alive connection"
                data += chunk
            response = RawResponse(data)
            assert response.status == 200
            assert response.complete
            assert decode(response.body)[-1][1] == "meteringEvent"
    assert [r.status for r in emu.requests] == [200, 200]


def test_connection_close_is_honoured(emu: KiroEmulator) -> None:
    response = raw_gar(emu, gar_body())  # sends Connection: close, reads until EOF
    assert response.complete
    assert response.headers.get("connection") == "close"


# ---------------------------------------------------------------------------------------------
# endpoints
# ---------------------------------------------------------------------------------------------


def test_rest_style_generate(emu: KiroEmulator) -> None:
    response = HTTP.post(
        emu.base_url + "/generateAssistantResponse",
        json=gar_body(model="claude-haiku-4.5"),
        headers=key_headers(emu),
    )
    assert response.status_code == 200
    assert "claude-haiku-4.5" in text_of(decode(response.content))
    assert emu.requests[-1].target == "GenerateAssistantResponse"
    assert emu.requests[-1].operation == "GenerateAssistantResponse"


def test_list_models_both_styles_and_pagination(emu: KiroEmulator) -> None:
    query = "origin=KIRO_CLI&profileArn=arn%3Aaws%3Acodewhisperer%3Aus-east-1%3A0%3Aprofile%2FX"
    aws = HTTP.post(
        f"{emu.base_url}/?{query}",
        content=json.dumps({"origin": "KIRO_CLI"}),
        headers={"x-amz-target": MODELS_TARGET, **key_headers(emu)},
    )
    assert aws.status_code == 200
    assert aws.headers["content-type"] == "application/x-amz-json-1.0"
    data = aws.json()
    assert data["defaultModel"] == {"modelId": "auto"}
    assert data["nextToken"] is None
    sonnet = next(m for m in data["models"] if m["modelId"] == "claude-sonnet-4.5")
    assert sonnet["tokenLimits"] == {"maxInputTokens": 200_000, "maxOutputTokens": 64_000}
    assert sonnet["supportedInputTypes"] == ["TEXT", "IMAGE"]
    assert sonnet["rateUnit"] == "Credit"
    assert emu.requests[-1].query["origin"] == "KIRO_CLI"

    ids: list[str] = []
    token = None
    while True:
        params = {
            "origin": "AI_EDITOR",
            "maxResults": "4",
            **({"nextToken": token} if token else {}),
        }
        page = HTTP.get(
            emu.base_url + "/ListAvailableModels", params=params, headers=key_headers(emu)
        )
        assert page.status_code == 200
        assert len(page.json()["models"]) <= 4
        ids += [m["modelId"] for m in page.json()["models"]]
        token = page.json()["nextToken"]
        if not token:
            break
    assert ids == [m["modelId"] for m in data["models"]]
    bad = HTTP.get(emu.base_url + "/ListAvailableModels?nextToken=nope", headers=key_headers(emu))
    assert bad.status_code == 400


def test_extra_models_are_listed_and_accepted() -> None:
    with KiroEmulator(
        models=["my-model", {"modelId": "big", "tokenLimits": {"maxInputTokens": 5}}]
    ) as emu:
        ids = [m["modelId"] for m in emu.catalog]
        assert "my-model" in ids
        assert "big" in ids
        assert post_gar(emu, gar_body(model="my-model")).status_code == 200


def test_usage_limits_both_styles_accumulate_metering(emu: KiroEmulator) -> None:
    for _ in range(2):
        post_gar(emu, gar_body())
    aws = HTTP.post(
        emu.base_url + "/",
        content=json.dumps({"origin": "AI_EDITOR"}),
        headers={"x-amz-target": USAGE_TARGET, **key_headers(emu)},
    )
    rest = HTTP.get(
        emu.base_url + "/getUsageLimits",
        params={
            "origin": "AI_EDITOR",
            "resourceType": "AGENTIC_REQUEST",
            "isEmailRequired": "true",
        },
        headers=key_headers(emu),
    )
    for response in (aws, rest):
        assert response.status_code == 200
        entry = response.json()["usageBreakdownList"][0]
        assert entry["resourceType"] == "CREDIT"
        assert entry["currentUsageWithPrecision"] == round(2 * 0.02730794364842454, 2)
        assert entry["usageLimitWithPrecision"] == emu.usage.limit
    assert aws.json()["userInfo"]["email"] is None
    assert rest.json()["userInfo"]["email"] == "user@example.com"
    emu.usage.used = 12.5
    emu.usage.limit = 50
    entry = HTTP.get(emu.base_url + "/getUsageLimits", headers=key_headers(emu)).json()
    assert entry["usageBreakdownList"][0]["currentUsageWithPrecision"] == 12.5


def test_usage_limit_enforced_when_asked(emu: KiroEmulator) -> None:
    emu.usage.enforce_limit = True
    emu.usage.used = emu.usage.limit
    response = post_gar(emu, gar_body())
    assert response.status_code == 402
    assert response.json()["reason"] == "MONTHLY_REQUEST_COUNT"


def test_unknown_path_and_target(emu: KiroEmulator) -> None:
    missing = HTTP.get(emu.base_url + "/nope")
    assert missing.status_code == 404
    assert "message" in missing.json()
    unknown = HTTP.post(emu.base_url + "/", content=b"{}", headers={"x-amz-target": "Foo.Bar"})
    assert unknown.status_code == 400
    assert unknown.json()["__type"] == "UnknownOperationException"


def test_profile_and_telemetry_operations(emu: KiroEmulator) -> None:
    acct = emu.add_account("alice", kind="social")
    headers = {"Authorization": f"Bearer {emu.issue_access_token(acct)}"}
    for target, key in (("ListAvailableProfiles", "profiles"), ("GetProfile", "profile")):
        response = HTTP.post(
            emu.base_url + "/",
            content=b"{}",
            headers={"x-amz-target": f"AmazonCodeWhispererService.{target}", **headers},
        )
        assert response.status_code == 200
        assert acct.profile_arn in json.dumps(response.json()[key])
    telemetry = HTTP.post(
        emu.base_url + "/",
        content=b"{}",
        headers={"x-amz-target": "AmazonCodeWhispererService.SendTelemetryEvent", **headers},
    )
    assert telemetry.status_code == 200


# ---------------------------------------------------------------------------------------------
# authentication
# ---------------------------------------------------------------------------------------------


def test_missing_bearer_is_403(emu: KiroEmulator) -> None:
    response = post_gar(emu, gar_body(), headers={})
    assert response.status_code == 403
    assert response.json() == BEARER_INVALID
    assert emu.requests[-1].problems == ["no 'Authorization: Bearer ...' header"]


def test_api_key_needs_tokentype_header(emu: KiroEmulator) -> None:
    response = post_gar(emu, gar_body(), headers={"Authorization": f"Bearer {emu.api_key}"})
    assert response.status_code == 403
    assert response.json() == BEARER_INVALID
    assert "tokentype: API_KEY" in emu.requests[-1].problems[0]
    fine = post_gar(
        emu, gar_body(), headers={"Authorization": f"Bearer {emu.api_key}", "TokenType": "API_KEY"}
    )
    assert fine.status_code == 200
    assert emu.requests[-1].account == "default"


def test_access_tokens_expire_and_can_be_revoked(emu: KiroEmulator) -> None:
    acct = emu.add_account("alice", kind="social", access_token_ttl=60)
    token = emu.issue_access_token(acct)
    headers = {"Authorization": f"Bearer {token}"}
    assert post_gar(emu, gar_body(), headers=headers).status_code == 200
    assert emu.requests[-1].account == "alice"
    emu.advance_clock(61)
    assert post_gar(emu, gar_body(), headers=headers).status_code == 403
    assert "expired" in emu.requests[-1].problems[0]
    fresh = {"Authorization": f"Bearer {emu.issue_access_token(acct, ttl=3600)}"}
    assert post_gar(emu, gar_body(), headers=fresh).status_code == 200
    emu.expire_access_tokens()
    assert post_gar(emu, gar_body(), headers=fresh).status_code == 403
    newest = {"Authorization": f"Bearer {emu.issue_access_token(acct)}"}
    emu.revoke(acct)
    assert post_gar(emu, gar_body(), headers=newest).status_code == 403
    assert (
        post_gar(emu, gar_body(), headers={"Authorization": "Bearer aoa-made-up"}).status_code
        == 403
    )


def test_suspended_and_quota_exhausted_accounts(emu: KiroEmulator) -> None:
    suspended = emu.add_account("sus", kind="social", suspended=True)
    broke = emu.add_account("broke", kind="oidc", quota_exhausted=True)
    response = post_gar(
        emu, gar_body(), headers={"Authorization": f"Bearer {emu.issue_access_token(suspended)}"}
    )
    assert response.status_code == 403
    assert response.json()["reason"] == "TEMPORARILY_SUSPENDED"
    assert response.json()["__type"] == "AccessDeniedException"
    response = post_gar(
        emu, gar_body(), headers={"Authorization": f"Bearer {emu.issue_access_token(broke)}"}
    )
    assert response.status_code == 402
    assert response.json() == {
        "message": "You have reached the limit.",
        "reason": "MONTHLY_REQUEST_COUNT",
    }


def test_external_idp_tokens_need_tokentype_header(emu: KiroEmulator) -> None:
    acct = emu.add_account("corp", kind="external_idp")
    token = emu.issue_access_token(acct)
    assert (
        post_gar(emu, gar_body(), headers={"Authorization": f"Bearer {token}"}).status_code == 403
    )
    assert "EXTERNAL_IDP" in emu.requests[-1].problems[0]
    ok = post_gar(
        emu, gar_body(), headers={"Authorization": f"Bearer {token}", "TokenType": "EXTERNAL_IDP"}
    )
    assert ok.status_code == 200


# ---------------------------------------------------------------------------------------------
# refresh endpoints
# ---------------------------------------------------------------------------------------------


def test_social_refresh_with_rotation(emu: KiroEmulator) -> None:
    acct = emu.add_account("alice", kind="social", rotate_refresh_token=True, access_token_ttl=900)
    assert acct.profile_arn
    assert re.fullmatch(
        r"arn:aws:codewhisperer:us-east-1:\d{12}:profile/[A-Z0-9]+", acct.profile_arn
    )
    old = acct.refresh_token
    response = HTTP.post(emu.auth_url + "/refreshToken", json={"refreshToken": old})
    assert response.status_code == 200
    data = response.json()
    assert set(data) == {"accessToken", "refreshToken", "expiresIn", "profileArn"}
    assert data["expiresIn"] == 900
    assert data["profileArn"] == acct.profile_arn
    assert data["accessToken"].startswith("aoa")
    assert data["refreshToken"].startswith("aor")
    assert data["refreshToken"] != old
    assert data["refreshToken"] == acct.refresh_token
    assert (
        post_gar(
            emu, gar_body(), headers={"Authorization": f"Bearer {data['accessToken']}"}
        ).status_code
        == 200
    )
    again = HTTP.post(emu.auth_url + "/refreshToken", json={"refreshToken": old})
    assert again.status_code == 400
    assert "invalid_grant" in again.text
    assert "Invalid refresh token provided" in again.text
    assert emu.refresh_count == 2
    assert acct.refresh_count == 1


def test_social_refresh_without_rotation_keeps_token(emu: KiroEmulator) -> None:
    acct = emu.add_account("bob", kind="social")
    for _ in range(2):
        data = HTTP.post(
            emu.auth_url + "/refreshToken", json={"refreshToken": acct.refresh_token}
        ).json()
        assert data["refreshToken"] == acct.refresh_token
    assert acct.refresh_count == 2


def test_oidc_create_token(emu: KiroEmulator) -> None:
    acct = emu.add_account("builder", kind="oidc")
    assert acct.profile_arn is None
    assert acct.client_id
    assert acct.client_secret
    body = {
        "clientId": acct.client_id,
        "clientSecret": acct.client_secret,
        "grantType": "refresh_token",
        "refreshToken": acct.refresh_token,
    }
    response = HTTP.post(emu.oidc_url + "/token", json=body)
    assert response.status_code == 200
    data = response.json()
    assert data["tokenType"] == "Bearer"
    assert data["expiresIn"] == 3600
    assert data["refreshToken"] == acct.refresh_token
    assert (
        post_gar(
            emu, gar_body(), headers={"Authorization": f"Bearer {data['accessToken']}"}
        ).status_code
        == 200
    )
    wrong_client = HTTP.post(emu.oidc_url + "/token", json={**body, "clientSecret": "nope"})
    assert wrong_client.status_code == 400
    assert wrong_client.json()["error"] == "invalid_grant"
    incomplete = HTTP.post(emu.oidc_url + "/token", json={"refreshToken": acct.refresh_token})
    assert incomplete.json()["error"] == "invalid_request"
    # an OIDC refresh token sent to the social endpoint is not accepted there
    social = HTTP.post(emu.auth_url + "/refreshToken", json={"refreshToken": acct.refresh_token})
    assert social.status_code == 400
    assert emu.refresh_count == 4
    assert acct.refresh_count == 1


def test_external_idp_form_refresh(emu: KiroEmulator) -> None:
    acct = emu.add_account("corp", kind="external_idp", rotate_refresh_token=True)
    assert acct.token_endpoint == emu.base_url + "/external-idp/token"
    form = {
        "grant_type": "refresh_token",
        "client_id": acct.client_id,
        "refresh_token": acct.refresh_token,
    }
    response = HTTP.post(acct.token_endpoint, data=form)
    assert response.status_code == 200
    data = response.json()
    assert set(data) >= {"access_token", "refresh_token", "expires_in"}
    assert data["refresh_token"] == acct.refresh_token != form["refresh_token"]
    stale = HTTP.post(acct.token_endpoint, data=form)
    assert stale.status_code == 400
    assert stale.json()["error"] == "invalid_grant"


def test_scripted_refresh_failure_then_success(emu: KiroEmulator) -> None:
    acct = emu.add_account("alice", kind="social")
    emu.script_for("RefreshToken", Fault.http(500), Fault.latency(0.05))
    first = HTTP.post(emu.auth_url + "/refreshToken", json={"refreshToken": acct.refresh_token})
    assert first.status_code == 500
    second = HTTP.post(emu.auth_url + "/refreshToken", json={"refreshToken": acct.refresh_token})
    assert second.status_code == 200
    with pytest.raises(ValueError, match="not streamed"):
        emu.script_for("RefreshToken", Reply.text("no"))


def test_scripted_reset_on_refresh_is_a_connection_error(emu: KiroEmulator) -> None:
    acct = emu.add_account("alice", kind="social")
    emu.script_for("RefreshToken", Fault.reset())
    with pytest.raises(httpx.TransportError):
        HTTP.post(emu.auth_url + "/refreshToken", json={"refreshToken": acct.refresh_token})


# ---------------------------------------------------------------------------------------------
# scripted replies
# ---------------------------------------------------------------------------------------------


def test_script_is_fifo_then_default(emu: KiroEmulator) -> None:
    emu.script(Reply.text("one"), Reply.text("two"))
    assert emu.pending == 2
    texts = [text_of(decode(post_gar(emu, gar_body()).content)) for _ in range(3)]
    assert texts == ["one", "two", "Hello from the Kiro emulator (claude-sonnet-4.5)."]
    assert emu.pending == 0


def test_reply_text_options(emu: KiroEmulator) -> None:
    emu.script(
        Reply.text(
            "abcdef",
            chunk_size=2,
            duplicate_chunks=True,
            followup=True,
            reasoning="thinking hard",
            stop_reason=None,
            context_usage=18.152000427246094,
            metering=0.5,
        )
    )
    frames = decode(post_gar(emu, gar_body()).content)
    kinds = [k for _, k, _ in frames]
    assert kinds[0] == "reasoningContentEvent"
    assert "signature" in frames[kinds.index("assistantResponseEvent") - 1][2]
    contents = [
        p["content"] for _, k, p in frames if k == "assistantResponseEvent" and "content" in p
    ]
    assert contents == ["ab", "ab", "cd", "cd", "ef", "ef"]
    assert any("followupPrompt" in p for _, k, p in frames if k == "assistantResponseEvent")
    assert "metadataEvent" not in kinds
    assert frames[-2][2] == {"contextUsagePercentage": 18.152000427246094}
    assert frames[-1][2]["usage"] == 0.5


def test_reply_text_explicit_chunks_and_delay(emu: KiroEmulator) -> None:
    emu.script(Reply.text("", chunk_size=["Hel", "lo"], delay_between=0.02))
    started = time.monotonic()
    frames = decode(post_gar(emu, gar_body()).content)
    assert time.monotonic() - started >= 0.08  # 5 frames, 4 pauses
    assert [p["content"] for _, k, p in frames if k == "assistantResponseEvent"] == ["Hel", "lo"]


def test_tool_call_fragments(emu: KiroEmulator) -> None:
    reply = Reply.tool_call(
        "get_weather", {"city": "Paris", "days": 3}, text_before="Let me check.", fragments=3
    )
    call_id = reply.calls[0].tool_use_id
    assert re.fullmatch(r"tooluse_[A-Za-z0-9]{22}", call_id)
    emu.script(reply)
    frames = decode(post_gar(emu, gar_body()).content)
    uses = [p for _, k, p in frames if k == "toolUseEvent"]
    assert uses[0]["input"] == {}
    assert uses[0]["stop"] is False
    assert len(uses) == 4
    assert [u["stop"] for u in uses] == [False, False, False, True]
    assert all(u["name"] == "get_weather" and u["toolUseId"] == call_id for u in uses)
    assert tool_input(frames) == {"city": "Paris", "days": 3}
    kinds = [k for _, k, _ in frames]
    assert (
        kinds.index("assistantResponseEvent")
        < kinds.index("toolUseEvent")
        < kinds.index("metadataEvent")
    )


def test_tool_call_variants(emu: KiroEmulator) -> None:
    emu.script(
        Reply.tool_call("t", {"a": 1}, whole_object=True, tool_use_id="tooluse_fixed"),
        Reply.tool_call("t", '{"a": 1', stop=False, empty_object_first=False),
    )
    whole = [p for _, k, p in decode(post_gar(emu, gar_body()).content) if k == "toolUseEvent"]
    assert whole == [{"name": "t", "toolUseId": "tooluse_fixed", "input": {"a": 1}, "stop": True}]
    cut = [p for _, k, p in decode(post_gar(emu, gar_body()).content) if k == "toolUseEvent"]
    assert not any(p["stop"] for p in cut)
    assert "".join(p["input"] for p in cut) == '{"a": 1'


def test_interleaved_tool_calls(emu: KiroEmulator) -> None:
    emu.script(Reply.tool_calls([("a", {"x": "1234"}), ("b", {"y": "5678"})], interleave=True))
    frames = decode(post_gar(emu, gar_body()).content)
    names = [p["name"] for _, k, p in frames if k == "toolUseEvent"]
    assert names[:4] == ["a", "b", "a", "b"]
    ids = {p["name"]: p["toolUseId"] for _, k, p in frames if k == "toolUseEvent"}
    assert tool_input(frames, ids["a"]) == {"x": "1234"}
    assert tool_input(frames, ids["b"]) == {"y": "5678"}


def test_raw_events_reply(emu: KiroEmulator) -> None:
    emu.script(
        Reply.events(
            [
                ("assistantResponseEvent", {"content": "x"}),
                ("codeReferenceEvent", {"references": []}),
            ]
        )
    )
    frames = decode(post_gar(emu, gar_body()).content)
    assert [k for _, k, _ in frames] == ["assistantResponseEvent", "codeReferenceEvent"]


# ---------------------------------------------------------------------------------------------
# faults
# ---------------------------------------------------------------------------------------------


def test_http_faults(emu: KiroEmulator) -> None:
    emu.script(
        Fault.http(429, retry_after=2), Fault.http(500, "plain text", headers={"X-Extra": "1"})
    )
    throttled = post_gar(emu, gar_body())
    assert throttled.status_code == 429
    assert throttled.headers["retry-after"] == "2"
    assert throttled.json()["message"] == "Too many requests, please wait before trying again."
    assert emu.requests[-1].status == 429
    failed = post_gar(emu, gar_body())
    assert failed.status_code == 500
    assert failed.text == "plain text"
    assert failed.headers["x-extra"] == "1"


def test_exception_frame_after_text(emu: KiroEmulator) -> None:
    emu.script(Fault.exception_frame("ThrottlingException", after_text="partial answer"))
    frames = decode(post_gar(emu, gar_body()).content)
    assert text_of(frames) == "partial answer"
    assert frames[-1] == (
        "exception",
        "ThrottlingException",
        {"message": "Too many requests, please wait before trying again."},
    )


def test_error_frame(emu: KiroEmulator) -> None:
    emu.script(Fault.error_frame("InternalFailure", "boom"))
    buffer = EventStreamBuffer()
    buffer.add_data(post_gar(emu, gar_body()).content)
    (message,) = list(buffer)
    assert message.headers[":message-type"] == "error"
    assert message.headers[":error-code"] == "InternalFailure"


def test_corrupt_crc_is_detected_by_botocore(emu: KiroEmulator) -> None:
    emu.script(Fault.corrupt_crc(after_frames=1, reply=Reply.text("abc def ghi", chunk_size=3)))
    buffer = EventStreamBuffer()
    buffer.add_data(post_gar(emu, gar_body()).content)
    iterator = iter(buffer)
    assert next(iterator).payload == b'{"content":"abc"}'
    with pytest.raises(ChecksumMismatch):
        next(iterator)


def test_truncate_mid_frame_breaks_the_body(emu: KiroEmulator) -> None:
    emu.script(Fault.truncate(after_frames=2))
    with pytest.raises(httpx.RemoteProtocolError):
        post_gar(emu, gar_body())
    emu.script(Fault.truncate(after_frames=2))
    raw = raw_gar(emu, gar_body())
    assert raw.status == 200
    assert not raw.complete
    buffer = EventStreamBuffer()
    buffer.add_data(raw.body)
    assert len(list(buffer)) == 2  # two whole frames, then half of the third


def test_clean_truncation_ends_without_metering(emu: KiroEmulator) -> None:
    emu.script(
        Fault.truncate(after_frames=1, partial=False, reply=Reply.tool_call("t", {"a": "long"}))
    )
    frames = decode(post_gar(emu, gar_body()).content)
    assert [k for _, k, _ in frames] == ["toolUseEvent"]


def test_stall_then_resume(emu: KiroEmulator) -> None:
    emu.script(Fault.stall(0.4, after_frames=1))
    started = time.monotonic()
    frames = decode(post_gar(emu, gar_body()).content)
    assert time.monotonic() - started >= 0.4
    assert frames[-1][1] == "meteringEvent"
    emu.script(Fault.stall(0.5, after_frames=1))
    with HTTP.stream(
        "POST",
        emu.base_url + "/",
        content=json.dumps(gar_body()),
        headers={"x-amz-target": GAR_TARGET, **key_headers(emu)},
        timeout=httpx.Timeout(5.0, read=0.15),
    ) as response:
        received: list[bytes] = []
        with pytest.raises(httpx.ReadTimeout):
            drain(response, received)
    assert len(decode(b"".join(received))) == 1


def test_keep_alive_without_eof(emu: KiroEmulator) -> None:
    emu.script(Fault.keep_alive_without_eof(Reply.text("all here")))
    received: list[bytes] = []
    with (
        HTTP.stream(
            "POST",
            emu.base_url + "/",
            content=json.dumps(gar_body()),
            headers={"x-amz-target": GAR_TARGET, **key_headers(emu)},
            timeout=httpx.Timeout(5.0, read=0.3),
        ) as response,
        pytest.raises(httpx.ReadTimeout),
    ):
        drain(response, received)
    frames = decode(b"".join(received))
    assert text_of(frames) == "all here"
    assert frames[-1][1] == "meteringEvent"
    assert post_gar(emu, gar_body()).status_code == 200  # the emulator is still serving


def test_reset_is_a_connection_error(emu: KiroEmulator) -> None:
    emu.script(Fault.reset(after_frames=1))
    with pytest.raises(httpx.TransportError):
        post_gar(emu, gar_body())
    emu.script(Fault.reset(after_frames=0))
    with pytest.raises(ConnectionResetError):
        raw_gar(emu, gar_body())


def test_latency_fault_and_emulator_latency() -> None:
    with KiroEmulator(latency=0.1) as emu:
        emu.script(Fault.latency(0.2, Reply.text("late")))
        started = time.monotonic()
        assert text_of(decode(post_gar(emu, gar_body()).content)) == "late"
        assert time.monotonic() - started >= 0.3


def test_stop_does_not_hang_on_stalled_stream() -> None:
    emu = KiroEmulator().start()
    emu.script(Fault.stall(30, after_frames=1))
    errors: list[BaseException] = []

    def client() -> None:
        try:
            post_gar(emu, gar_body(), timeout=10)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=client)
    thread.start()
    deadline = time.monotonic() + 2
    while not emu.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    emu.stop()
    emu.stop()  # idempotent
    assert time.monotonic() - started < 2
    thread.join(5)
    assert errors
    assert isinstance(errors[0], httpx.TransportError)
    with pytest.raises(RuntimeError, match="not running"):
        _ = emu.base_url


def test_concurrent_requests(emu: KiroEmulator) -> None:
    results: list[int] = []

    def worker() -> None:
        results.append(post_gar(emu, gar_body()).status_code)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == [200] * 8
    assert len(emu.requests) == 8


# ---------------------------------------------------------------------------------------------
# default responder
# ---------------------------------------------------------------------------------------------

MAGIC = tool(
    "magic_function",
    {"type": "object", "properties": {"input": {"type": "integer"}}, "required": ["input"]},
)
NO_ARGS = tool("magic_function_no_args", {"type": "object", "properties": {}})
WEATHER = tool("get_weather", {"type": "object", "properties": {"location": {"type": "string"}}})
CUSTOMER = tool(
    "unicode_customer",
    {
        "type": "object",
        "properties": {"customer_name": {"type": "string"}, "description": {"type": "string"}},
        "required": ["customer_name", "description"],
    },
)


def test_default_tool_call_from_prompt_number(emu: KiroEmulator) -> None:
    body = gar_body("What is the value of magic_function(3)? Use the tool.", tools=[MAGIC, NO_ARGS])
    frames = decode(post_gar(emu, body).content)
    (name,) = {p["name"] for _, k, p in frames if k == "toolUseEvent"}
    assert name == "magic_function"
    assert tool_input(frames) == {"input": 3}


def test_default_tool_call_without_arguments(emu: KiroEmulator) -> None:
    body = gar_body(
        "What is the value of magic_function_no_args()? Use the tool.", tools=[MAGIC, NO_ARGS]
    )
    frames = decode(post_gar(emu, body).content)
    assert {p["name"] for _, k, p in frames if k == "toolUseEvent"} == {"magic_function_no_args"}
    assert tool_input(frames) == {}


def test_default_unicode_quoted_name_kept(emu: KiroEmulator) -> None:
    prompt = "Create a customer named '你好啊集团' (Hello Group) - a Chinese technology company"
    body = gar_body(
        prompt + "\n\nYou must call the tool named unicode_customer.", tools=[WEATHER, CUSTOMER]
    )
    response = post_gar(emu, body)
    assert "你好啊集团".encode() in response.content  # unescaped on the wire
    args = tool_input(decode(response.content))
    assert args == {"customer_name": "你好啊集团", "description": "example"}


def test_default_forced_and_implicit_tools() -> None:
    forced_any = default_reply(
        gar_body("Hello!\nYou must call one of the tools.", tools=[WEATHER, MAGIC])
    )
    assert forced_any.calls[0].name == "get_weather"
    forced = default_reply(
        gar_body("Hello! You must call the tool named `magic_function`.", tools=[WEATHER, MAGIC])
    )
    assert forced.calls[0].name == "magic_function"
    assert forced.calls[0].args == {"input": 1}
    weather = default_reply(
        gar_body("What is the weather in San Francisco, CA?", tools=[MAGIC, WEATHER])
    )
    assert weather.calls[0].name == "get_weather"
    plain = default_reply(gar_body("Hello!", tools=[MAGIC]))
    assert not plain.calls
    assert "Hello from the Kiro emulator" in "".join(plain.chunks)


def test_default_answers_tool_results_in_text() -> None:
    history = [
        {
            "userInputMessage": {
                "content": "weather?",
                "modelId": "claude-sonnet-4.5",
                "origin": "KIRO_CLI",
            }
        },
        {
            "assistantResponseMessage": {
                "content": "",
                "toolUses": [{"toolUseId": "t1", "name": "get_weather", "input": {}}],
            }
        },
    ]
    body = gar_body(
        "",
        tools=[WEATHER],
        history=history,
        tool_results=[
            {"toolUseId": "t1", "content": [{"text": "sunny, 21 °C"}], "status": "success"}
        ],
    )
    reply = default_reply(body)
    assert not reply.calls
    assert "".join(reply.chunks) == "The tool get_weather returned: sunny, 21 °C"


def test_schema_derivation() -> None:
    schema = {
        "type": "object",
        "properties": {
            "count": {"type": "integer"},
            "ratio": {"type": "number"},
            "name": {"type": "string"},
            "mode": {"type": "string", "enum": ["fast", "slow"]},
            "flag": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "owner": {"$ref": "#/$defs/Person"},
            "maybe": {"anyOf": [{"type": "null"}, {"type": "integer"}]},
        },
        "$defs": {"Person": {"type": "object", "properties": {"first": {"type": "string"}}}},
    }
    args = args_from_schema(schema, 'Use 7 and 2.5 for "Ada" and “Grace” and 「Hopper」.')
    assert args == {
        "count": 7,
        "ratio": 2.5,
        "name": "Ada",
        "mode": "fast",
        "flag": True,
        "tags": ["Grace"],
        "owner": {"first": "Hopper"},
        "maybe": 1,
    }
    many = {
        "type": "object",
        "properties": {f"p{i}": {"type": "string"} for i in range(8)},
        "required": ["p3"],
    }
    assert args_from_schema(many, "") == {"p3": "example"}


def test_default_json_answers() -> None:
    schema = {
        "title": "Joke",
        "type": "object",
        "properties": {"setup": {"type": "string"}, "punchline": {"type": "string"}},
    }
    embedded = default_reply(
        gar_body(f"Tell me a joke. Respond with JSON matching this schema: {json.dumps(schema)}")
    )
    assert json.loads("".join(embedded.chunks)) == {"setup": "example", "punchline": "example"}
    keys = default_reply(gar_body("Return the result as a JSON with 'setup' and 'punchline' keys."))
    assert json.loads("".join(keys.chunks)) == {"setup": "example", "punchline": "example"}
    bare = default_reply(gar_body("Answer in json please."))
    assert "".join(bare.chunks) == "{}"


def test_kiro_cli_markers_are_stripped() -> None:
    content = (
        "--- CONTEXT ENTRY BEGIN ---\nCurrent time: 2026-01-01 12:00\n--- CONTEXT ENTRY END ---\n\n"
        "--- USER MESSAGE BEGIN ---\nmagic_function(5) please--- USER MESSAGE END ---"
    )
    reply = default_reply(gar_body(content, tools=[MAGIC]))
    assert reply.calls[0].args == {"input": 5}


# ---------------------------------------------------------------------------------------------
# request log
# ---------------------------------------------------------------------------------------------


def test_request_log_never_shows_secrets(
    emu: KiroEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="kiro_lc.testing")
    social = emu.add_account("alice", kind="social")
    oidc = emu.add_account("bob", kind="oidc")
    secrets = [emu.api_key, social.refresh_token, oidc.refresh_token, oidc.client_secret]
    token = emu.issue_access_token(social)
    secrets.append(token)
    post_gar(emu, gar_body())
    post_gar(emu, gar_body(), headers={"Authorization": f"Bearer {token}"})
    post_gar(emu, gar_body(model="nope"), headers={"Authorization": f"Bearer {token}"})
    refreshed = HTTP.post(
        emu.auth_url + "/refreshToken", json={"refreshToken": social.refresh_token}
    ).json()
    secrets.append(refreshed["accessToken"])
    HTTP.post(
        emu.oidc_url + "/token",
        json={
            "clientId": oidc.client_id,
            "clientSecret": oidc.client_secret,
            "grantType": "refresh_token",
            "refreshToken": oidc.refresh_token,
        },
    )
    log = repr(emu.requests) + repr(social) + repr(oidc) + repr(emu) + caplog.text
    for secret in secrets:
        assert secret
        assert secret not in log
    assert emu.requests[0].headers["authorization"] == "Bearer ***"
    assert emu.requests[3].body == {"refreshToken": "***"}
    assert emu.requests[2].problems == ["currentMessage: modelId 'nope' is not a known model"]
    emu.clear()
    assert emu.requests == []


def test_env_points_at_the_emulator(emu: KiroEmulator) -> None:
    env = emu.env()
    assert env["KIRO_API_URL"] == env["KIRO_AUTH_URL"] == env["KIRO_OIDC_URL"] == emu.base_url
    assert env["KIRO_API_KEY"] == emu.api_key
    assert emu.api_key.startswith("ksk_")
    assert env["KIRO_REGION"] == "us-east-1"
    acct = emu.add_account("alice", kind="social")
    social_env = emu.env(acct)
    assert "KIRO_API_KEY" not in social_env
    assert social_env["KIRO_PROFILE_ARN"] == acct.profile_arn
    headers = {"Authorization": f"Bearer {social_env['KIRO_ACCESS_TOKEN']}"}
    assert post_gar(emu, gar_body(), headers=headers).status_code == 200


def test_fixed_api_key_and_restart() -> None:
    emu = KiroEmulator(api_key="ksk_fixed_for_demo")
    emu.start()
    first_port = emu.port
    assert post_gar(emu, gar_body()).status_code == 200
    emu.stop()
    emu.start()
    try:
        assert emu.port == first_port
        assert emu.api_key == "ksk_fixed_for_demo"
        assert post_gar(emu, gar_body()).status_code == 200
    finally:
        emu.close()
