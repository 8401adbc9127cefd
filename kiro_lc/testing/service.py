"""The emulator's behaviour without sockets: routing, authentication, validation, scripts.

:class:`KiroService` turns one :class:`Incoming` request into a :class:`~.replies.Plan` and logs
it as a :class:`~.records.RecordedRequest`. :class:`~.emulator.KiroEmulator` adds the HTTP server.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal
from urllib.parse import parse_qsl

from kiro_lc.testing.accounts import (
    BEARER_INVALID,
    QUOTA_EXHAUSTED,
    SUSPENDED,
    AccountStore,
    EmulatorAccount,
)
from kiro_lc.testing.catalog import UsageState, build_catalog, list_models_page, window_of
from kiro_lc.testing.records import RecordedRequest, mask_body, mask_headers
from kiro_lc.testing.replies import Fault, Plan, Reply, Step, build_plan
from kiro_lc.testing.responder import default_reply
from kiro_lc.testing.validation import Problem, Rules, validate_generate_request

logger = logging.getLogger("kiro_lc.testing")

STREAMING_PREFIX = "AmazonCodeWhispererStreamingService."
RUNTIME_PREFIX = "AmazonCodeWhispererService."
OPERATIONS = (
    "GenerateAssistantResponse",
    "ListAvailableModels",
    "GetUsageLimits",
    "GetProfile",
    "ListAvailableProfiles",
    "SendTelemetryEvent",
    "RefreshToken",
    "CreateToken",
    "ExternalIdpToken",
)
_REST_ROUTES: dict[tuple[str, str], str] = {
    ("POST", "/generateassistantresponse"): "GenerateAssistantResponse",
    ("GET", "/listavailablemodels"): "ListAvailableModels",
    ("GET", "/getusagelimits"): "GetUsageLimits",
    ("GET", "/listavailableprofiles"): "ListAvailableProfiles",
    ("POST", "/refreshtoken"): "RefreshToken",
    ("POST", "/token"): "CreateToken",
    ("POST", "/external-idp/token"): "ExternalIdpToken",
}
_RUNTIME_OPERATIONS = frozenset(
    {
        "ListAvailableModels",
        "GetUsageLimits",
        "GetProfile",
        "ListAvailableProfiles",
        "SendTelemetryEvent",
    }
)
_AUTH_FREE = frozenset({"RefreshToken", "CreateToken", "ExternalIdpToken"})
Style = Literal["awsjson", "rest"]


@dataclass(frozen=True)
class Incoming:
    """One HTTP request as the server read it; header names lower-cased."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    request_id: str
    client_port: int | None = None


@dataclass
class _Call:
    """Working state of one request while it is handled."""

    req: Incoming
    operation: str | None
    style: Style
    target: str | None
    account: EmulatorAccount | None = None
    problems: list[str] | None = None
    parsed: Any = None


def _json_plan(status: int, body: Mapping[str, Any], style: Style) -> Plan:
    ctype = "application/x-amz-json-1.0" if style == "awsjson" else "application/json"
    headers: list[tuple[str, str]] = [("Content-Type", ctype)]
    if "__type" in body:
        headers.append(("x-amzn-ErrorType", str(body["__type"])))
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Plan(status=status, body=data, headers=tuple(headers))


class KiroService:
    """State and request handling shared by every connection of one emulator."""

    def __init__(
        self,
        *,
        strict: bool = True,
        models: Iterable[str | Mapping[str, Any]] = (),
        disabled_models: Iterable[str] = (),
        max_request_bytes: int = 600_000,
        latency: float = 0.0,
        require_profile_arn: bool = False,
        api_key: str | None = None,
    ) -> None:
        self.strict = strict
        self.latency = latency
        self.require_profile_arn = require_profile_arn
        self.usage = UsageState()
        self._catalog = build_catalog(models)
        self.rules = Rules(
            known_models=frozenset(e["modelId"] for e in self._catalog),
            disabled_models=frozenset(disabled_models),
            max_request_bytes=max_request_bytes,
        )
        self._lock = threading.Lock()
        self._accounts = AccountStore()
        self._queues: dict[str, deque[Reply | Fault]] = {op: deque() for op in OPERATIONS}
        self._requests: list[RecordedRequest] = []
        self._sequence = 0
        self.default_account = self._accounts.add("default", kind="api_key", api_key=api_key)

    # -- public state --------------------------------------------------------------------------

    @property
    def api_key(self) -> str:
        """The ``ksk_`` API key of the default account (send it with ``tokentype: API_KEY``)."""
        return self._accounts.api_key_of(self.default_account.name)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the request log, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def refresh_count(self) -> int:
        """Refresh calls served over all three refresh endpoints (failed ones included)."""
        return self._accounts.refresh_calls

    @property
    def pending(self) -> int:
        """Scripted items not yet consumed, over all operations."""
        with self._lock:
            return sum(len(q) for q in self._queues.values())

    @property
    def catalog(self) -> list[dict[str, Any]]:
        """The ListAvailableModels entries this emulator serves."""
        return [dict(e) for e in self._catalog]

    def clear(self) -> None:
        """Forget the request log and every scripted item not yet used."""
        with self._lock:
            self._requests.clear()
            for queue in self._queues.values():
                queue.clear()

    def script(self, *items: Reply | Fault) -> None:
        """Queue answers for the next GenerateAssistantResponse calls (FIFO, one per call)."""
        self.script_for("GenerateAssistantResponse", *items)

    def script_for(self, operation: str, *items: Reply | Fault) -> None:
        """Queue answers for another operation (``ListAvailableModels``, ``GetUsageLimits``,
        ``RefreshToken``, ``CreateToken``, ``ExternalIdpToken``, ...). Non-streaming operations
        accept ``Fault.http``, ``Fault.reset`` and ``Fault.latency``."""
        if operation not in self._queues:
            raise ValueError(f"unknown operation {operation!r}; use one of {', '.join(OPERATIONS)}")
        for item in items:
            if not isinstance(item, (Reply, Fault)):
                raise TypeError(
                    f"script items are Reply or Fault objects, not {type(item).__name__}"
                )
            if operation != "GenerateAssistantResponse" and not _simple_fault_ok(item):
                raise ValueError(
                    f"{operation} is not streamed: script Fault.http, Fault.reset or Fault.latency"
                )
        with self._lock:
            self._queues[operation].extend(items)

    # -- accounts ------------------------------------------------------------------------------

    def add_account(
        self,
        name: str,
        *,
        kind: str = "social",
        profile_arn: str | None = None,
        region: str = "us-east-1",
        access_token_ttl: float = 3600.0,
        rotate_refresh_token: bool = False,
        suspended: bool = False,
        quota_exhausted: bool = False,
    ) -> EmulatorAccount:
        """Create a ``social``, ``oidc``, ``external_idp`` (or extra ``api_key``) account."""
        return self._accounts.add(
            name,
            kind=kind,
            profile_arn=profile_arn,
            region=region,
            access_token_ttl=access_token_ttl,
            rotate_refresh_token=rotate_refresh_token,
            suspended=suspended,
            quota_exhausted=quota_exhausted,
        )

    def account(self, name: str) -> EmulatorAccount:
        """The account called ``name``."""
        return self._accounts.get(name)

    def api_key_of(self, account: EmulatorAccount | str) -> str:
        """The API key of an ``api_key`` account."""
        return self._accounts.api_key_of(self._accounts.get(account).name)

    def issue_access_token(self, account: EmulatorAccount | str, ttl: float | None = None) -> str:
        """Mint a valid bearer token for ``account`` (default TTL: the account's)."""
        return self._accounts.issue_access_token(account, ttl)

    def revoke(self, account: EmulatorAccount | str) -> None:
        """Invalidate every token of ``account`` (access tokens, API key, refresh token)."""
        self._accounts.revoke(account)

    def expire_access_tokens(self, account: EmulatorAccount | str | None = None) -> None:
        """Expire every access token now (of one account, or all)."""
        self._accounts.expire_access_tokens(account)

    def advance_clock(self, seconds: float) -> None:
        """Move the server clock forward; access tokens age accordingly."""
        self._accounts.advance_clock(seconds)

    # -- request handling ----------------------------------------------------------------------

    def next_sequence(self) -> int:
        """A per-emulator request counter (seeds the frame-splitting RNG deterministically)."""
        with self._lock:
            self._sequence += 1
            return self._sequence

    def handle(self, req: Incoming) -> Plan:
        """Answer one request and log it."""
        call = self._route(req)
        body: dict[str, Any]
        if call.operation is None:
            if call.target is not None:
                body = {
                    "__type": "UnknownOperationException",
                    "message": f"Unknown operation {call.target}",
                }
                return self._finish(call, _json_plan(400, body, "awsjson"))
            body = {"message": f"No route for {req.method} {req.path}", "reason": None}
            return self._finish(call, _json_plan(404, body, "rest"))
        if call.operation not in _AUTH_FREE:
            denied = self._authenticate(call)
            if denied is not None:
                return self._finish(call, denied)
        return self._finish(call, self._dispatch(call))

    def _route(self, req: Incoming) -> _Call:
        target = req.headers.get("x-amz-target")
        path = req.path.rstrip("/").lower() or "/"
        if path == "/" and req.method == "POST" and target:
            op = target.rsplit(".", 1)[-1]
            known = target == STREAMING_PREFIX + "GenerateAssistantResponse" or (
                target.startswith(RUNTIME_PREFIX) and op in _RUNTIME_OPERATIONS
            )
            return _Call(req, op if known else None, "awsjson", target)
        if path == "/" and req.method == "POST":
            return _Call(req, None, "awsjson", "(missing x-amz-target)")
        rest_op = _REST_ROUTES.get((req.method, path))
        style: Style = "awsjson" if target else "rest"
        return _Call(req, rest_op, style, target or rest_op)

    def _authenticate(self, call: _Call) -> Plan | None:
        headers = call.req.headers
        scheme, _, token = headers.get("authorization", "").partition(" ")
        tokentype = headers.get("tokentype", "").upper()
        problem = ""
        account = None
        if scheme.lower() != "bearer" or not token.strip():
            problem = "no 'Authorization: Bearer ...' header"
        else:
            account, problem, is_key = self._accounts.authenticate(token.strip())
            if account is not None:
                problem = _tokentype_problem(account, is_key, tokentype)
        if problem:
            call.problems = [problem]
            return _json_plan(403, BEARER_INVALID, call.style)
        assert account is not None
        call.account = account
        if account.suspended:
            call.problems = [f"account {account.name!r} is suspended"]
            return _json_plan(403, SUSPENDED, call.style)
        return None

    def _dispatch(self, call: _Call) -> Plan:
        item = None
        if call.operation != "GenerateAssistantResponse":
            with self._lock:
                queue = self._queues[call.operation or ""]
                item = queue.popleft() if queue else None
            normal = self._simple_operation(call)
            return _apply_simple_fault(item, normal) if item is not None else normal
        return self._generate(call)

    def _simple_operation(self, call: _Call) -> Plan:
        op = call.operation
        params = self._params(call)
        if op == "RefreshToken":
            return _json_plan(*self._accounts.refresh_social(params), "rest")
        if op == "CreateToken":
            return _json_plan(*self._accounts.refresh_oidc(params), "rest")
        if op == "ExternalIdpToken":
            return _json_plan(*self._accounts.refresh_external_idp(params), "rest")
        account = call.account
        assert account is not None
        if op == "ListAvailableModels":
            status, body = list_models_page(
                self._catalog,
                max_results=params.get("maxResults"),
                next_token=params.get("nextToken"),
            )
            return _json_plan(status, body, call.style)
        if op == "GetUsageLimits":
            wants_email = str(params.get("isEmailRequired", "")).lower() == "true"
            with self._lock:
                body = self.usage.body(include_email=wants_email)
            return _json_plan(200, body, call.style)
        profiles = [{"arn": account.profile_arn, "profileName": f"KiroProfile-{account.region}"}]
        if op == "GetProfile":
            return _json_plan(
                200, {"profile": profiles[0] if account.profile_arn else None}, call.style
            )
        if op == "ListAvailableProfiles":
            return _json_plan(
                200,
                {"profiles": profiles if account.profile_arn else [], "nextToken": None},
                call.style,
            )
        return _json_plan(200, {}, call.style)  # SendTelemetryEvent

    def _params(self, call: _Call) -> dict[str, Any]:
        """Query parameters merged with the JSON (or form) body; the body wins."""
        params: dict[str, Any] = dict(call.req.query)
        raw = call.req.body
        ctype = call.req.headers.get("content-type", "")
        if "x-www-form-urlencoded" in ctype:
            call.parsed = dict(parse_qsl(raw.decode("utf-8", "replace")))
        elif raw.strip():
            try:
                call.parsed = json.loads(raw)
            except ValueError:
                call.parsed = None
        if isinstance(call.parsed, dict):
            params.update(call.parsed)
        return params

    def _generate(self, call: _Call) -> Plan:
        body, problems = validate_generate_request(call.req.body, self.rules)
        call.parsed = body
        call.problems = [p.detail for p in problems]
        account = call.account
        assert account is not None
        arn_problem = self._profile_arn_problem(account, body)
        if arn_problem is not None:
            call.problems.append(arn_problem.detail)
            problems.append(arn_problem)
        if problems and self.strict:
            first = problems[0]
            return _json_plan(first.status, first.body(), call.style)
        with self._lock:
            over_limit = self.usage.enforce_limit and self.usage.used >= self.usage.limit
            queue = self._queues["GenerateAssistantResponse"]
            if account.quota_exhausted or over_limit:
                return _json_plan(402, QUOTA_EXHAUSTED, call.style)
            item = queue.popleft() if queue else None
        window = window_of(self._catalog, _model_of(body))

        def responder() -> Reply:
            return default_reply(body, window=window, raw_size=len(call.req.body))

        plan = build_plan(item if item is not None else responder(), responder)
        with self._lock:
            self.usage.used += plan.credits
        return replace(plan, latency=plan.latency + self.latency)

    def _profile_arn_problem(self, account: EmulatorAccount, body: Any) -> Problem | None:
        if not self.require_profile_arn or not account.profile_arn:
            return None
        sent = body.get("profileArn") if isinstance(body, dict) else None
        if sent == account.profile_arn:
            return None
        detail = (
            "profileArn is missing" if sent is None else "profileArn does not match the account"
        )
        message = (
            "profileArn is required for this request." if sent is None else "Invalid profileArn."
        )
        return Problem(detail, message=message)

    def _finish(self, call: _Call, plan: Plan) -> Plan:
        req = call.req
        if call.parsed is None and req.body:
            self._params(call)
        record = RecordedRequest(
            method=req.method,
            path=req.path,
            query=dict(req.query),
            headers=mask_headers(req.headers),
            body=mask_body(call.parsed),
            raw_size=len(req.body),
            target=call.target,
            account=call.account.name if call.account else None,
            problems=list(call.problems or []),
            status=plan.status if plan.status else 0,
            request_id=req.request_id,
            client_port=req.client_port,
        )
        if record.problems:
            logger.debug(
                "%s %s answered %s: %s",
                req.method,
                call.target or req.path,
                plan.status or "with a dropped connection",
                "; ".join(record.problems),
            )
        with self._lock:
            self._requests.append(record)
        return plan


def _model_of(body: Any) -> str:
    try:
        return str(body["conversationState"]["currentMessage"]["userInputMessage"]["modelId"])
    except (KeyError, TypeError):
        return ""


def _tokentype_problem(account: EmulatorAccount, is_key: bool, tokentype: str) -> str:
    if is_key and tokentype != "API_KEY":
        return "an API key (ksk_...) needs the header 'tokentype: API_KEY'"
    if not is_key and tokentype == "API_KEY":
        return "'tokentype: API_KEY' sent with an access token that is not an API key"
    if account.kind == "external_idp" and tokentype != "EXTERNAL_IDP":
        return "an external-IdP token needs the header 'TokenType: EXTERNAL_IDP'"
    if account.kind != "external_idp" and tokentype == "EXTERNAL_IDP":
        return "'TokenType: EXTERNAL_IDP' sent with a token that is not from an external IdP"
    return ""


def _simple_fault_ok(item: Reply | Fault | None) -> bool:
    if item is None:
        return True
    if not isinstance(item, Fault) or item.kind not in ("http", "reset", "latency"):
        return False
    return item.kind != "latency" or _simple_fault_ok(item.reply)


def _apply_simple_fault(item: Reply | Fault, normal: Plan) -> Plan:
    """A scripted item for a non-streaming operation: HTTP error, reset, or added latency."""
    if isinstance(item, Fault) and item.kind == "http":
        return build_plan(item, Reply)
    if isinstance(item, Fault) and item.kind == "reset":
        return Plan(status=0, steps=(Step("reset"),))
    if isinstance(item, Fault) and item.kind == "latency":
        inner = normal if item.reply is None else _apply_simple_fault(item.reply, normal)
        return replace(inner, latency=inner.latency + item.seconds)
    raise ValueError(f"{item!r} cannot answer a non-streaming operation")
