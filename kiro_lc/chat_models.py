"""``ChatKiro``: the Claude models of an Amazon Kiro account as a LangChain chat model.

The class holds configuration and the LangChain hooks only. Messages become a Kiro request in
:mod:`kiro_lc._convert`, the HTTP work happens in :mod:`kiro_lc.transport`, and Kiro's events
become ``AIMessageChunk``\\ s in :mod:`kiro_lc._assemble`. Kiro only streams, so ``invoke``
aggregates the stream.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from operator import itemgetter
from typing import Any, Literal

import httpx
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import LanguageModelInput, ModelProfile
from langchain_core.language_models.base import LangSmithParams
from langchain_core.language_models.chat_models import (
    BaseChatModel,
    agenerate_from_stream,
    generate_from_stream,
)
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.utils import count_tokens_approximately
from langchain_core.output_parsers import (
    JsonOutputKeyToolsParser,
    JsonOutputParser,
    PydanticOutputParser,
    PydanticToolsParser,
)
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass
from pydantic import AliasChoices, ConfigDict, Field, PrivateAttr, SecretStr

from kiro_lc._assemble import ChunkAssembler
from kiro_lc._convert import build_request, convert_tools, normalize_tool_choice
from kiro_lc.auth import KiroAuth
from kiro_lc.errors import KiroModelNotFoundError
from kiro_lc.models import KNOWN_MODELS, ModelList, UsageLimits, resolve_model_id, suggest
from kiro_lc.protocol import ConversationRequest
from kiro_lc.transport import AsyncKiroTransport, KiroTransport

__all__ = ["MODEL_LIST_TTL", "ChatKiro"]

MODEL_LIST_TTL = 300.0
"""Seconds a :meth:`ChatKiro.list_models` answer is reused before Kiro is asked again."""

# Guards the lazy creation of credentials and transports (rare; a global lock keeps ChatKiro
# instances free of unpicklable state until they are used).
_CLIENTS_LOCK = threading.Lock()

_StructuredMethod = Literal["function_calling", "json_schema", "json_mode"]


def _model_profile(model_id: str) -> ModelProfile:
    """A small static profile: what Kiro can do for ``model_id`` (tool_choice is emulated)."""
    profile = ModelProfile(
        text_inputs=True,
        image_url_inputs=False,
        pdf_inputs=False,
        audio_inputs=False,
        video_inputs=False,
        text_outputs=True,
        tool_calling=True,
        tool_call_streaming=True,
        tool_choice=False,
        structured_output=False,
    )
    info = KNOWN_MODELS.get(model_id)
    if info is not None:
        profile["name"] = info.name
        profile["max_input_tokens"] = info.max_input_tokens
        profile["image_inputs"] = info.image_inputs
        profile["image_tool_message"] = info.image_inputs
        if info.max_output_tokens:
            profile["max_output_tokens"] = info.max_output_tokens
    return profile


def _lone_text_to_str(result: ChatResult) -> ChatResult:
    """Collapse ``[{"type": "text", ...}]`` to a plain string, as ChatAnthropic does."""
    message = result.generations[0].message
    content = message.content
    if isinstance(content, list) and len(content) == 1:
        block = content[0]
        if isinstance(block, dict) and block.get("type") == "text":
            message.content = str(block.get("text", ""))
    return result


class ChatKiro(BaseChatModel):
    """Claude through Kiro's ``generateAssistantResponse`` API, as a LangChain chat model.

    Credentials are found the way ``kiro-cli`` and the Kiro IDE store them (or passed as
    ``api_key`` / ``access_token``), refreshed when they near expiry, and shared by the sync and
    async paths. See ``docs/chat-model.md`` for what Kiro supports and what is emulated.

    Example:
        ```python
        from kiro_lc import ChatKiro

        model = ChatKiro(model="claude-sonnet-4-5")
        model.invoke("Hello!")
        ```
    """

    model: str = Field(
        default="claude-sonnet-4-5", validation_alias=AliasChoices("model", "model_name")
    )
    """Model id: a friendly id (``claude-sonnet-4-5``), an alias (``sonnet``) or a backend id
    (``claude-sonnet-4.5``); resolved to the backend id per request. Unknown ids pass through."""
    base_url: str | None = None
    """API base URL; default ``KIRO_API_URL``, else ``https://q.{region}.amazonaws.com``."""
    region: str | None = None
    """AWS region of the account (default from the credentials, ``KIRO_REGION``, us-east-1)."""
    profile_arn: str | None = None
    """Kiro profile ARN; default from the credentials or ``KIRO_PROFILE_ARN``."""
    api_key: SecretStr | None = None
    """A Kiro API key (``ksk_...``); default ``KIRO_API_KEY``."""
    access_token: SecretStr | None = None
    """A bearer access token (not refreshed); default ``KIRO_ACCESS_TOKEN``."""
    db_path: str | None = None
    """Path of kiro-cli's SQLite store to read credentials from (default: its usual place)."""
    token_file: str | None = None
    """Path of the Kiro IDE token JSON (default ``~/.aws/sso/cache/kiro-auth-token.json``)."""
    read_only: bool | None = None
    """Never write refreshed tokens back to the credential store."""
    timeout: float | None = None
    """Seconds to connect and receive the response headers (default: the transport's)."""
    idle_timeout: float = 60.0
    """Seconds to wait for more bytes while a response streams."""
    max_retries: int = 2
    """Retries on throttling, server errors and connection failures before any output."""
    temperature: float | None = None
    """Accepted and traced; Kiro has no sampling parameters, so it has no effect."""
    max_tokens: int | None = None
    """Accepted and traced; Kiro has no output-length parameter, so it has no effect."""
    stop: list[str] | None = Field(
        default=None, validation_alias=AliasChoices("stop", "stop_sequences")
    )
    """Stop sequences, applied client-side (the stream is closed at the first match)."""
    streaming: bool = False
    """Make ``invoke`` go through the streaming callbacks."""
    stream_usage: bool = True
    """Put (estimated) usage on the final chunk of a stream."""
    origin: Literal["KIRO_CLI", "AI_EDITOR"] = "KIRO_CLI"
    """The ``origin`` Kiro sees (API keys always use ``AI_EDITOR``)."""
    http_client: httpx.Client | None = Field(default=None, exclude=True)
    """An ``httpx.Client`` to send sync requests with (kiro-lc never closes it)."""
    http_async_client: httpx.AsyncClient | None = Field(default=None, exclude=True)
    """An ``httpx.AsyncClient`` to send async requests with (kiro-lc never closes it)."""

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True)

    _auth: KiroAuth | None = PrivateAttr(default=None)
    _transport_sync: KiroTransport | None = PrivateAttr(default=None)
    _transport_async: AsyncKiroTransport | None = PrivateAttr(default=None)
    _models: tuple[float, ModelList] | None = PrivateAttr(default=None)

    # -- identity ----------------------------------------------------------------------------

    @property
    def _llm_type(self) -> str:
        return "kiro-chat"

    @property
    def model_id(self) -> str:
        """The backend id ``model`` resolves to (what is sent to Kiro)."""
        return resolve_model_id(self.model)

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "model_id": self.model_id,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "stop": self.stop,
            "streaming": self.streaming,
            "base_url": self.base_url,
            "origin": self.origin,
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider="kiro",
            ls_model_name=kwargs.get("model") or self.model,
            ls_model_type="chat",
        )
        temperature = kwargs.get("temperature", self.temperature)
        if temperature is not None:
            params["ls_temperature"] = float(temperature)
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if max_tokens is not None:
            params["ls_max_tokens"] = int(max_tokens)
        stop_sequences = stop or kwargs.get("stop") or self.stop
        if stop_sequences:
            params["ls_stop"] = list(stop_sequences)
        return params

    def _resolve_model_profile(self) -> ModelProfile | None:
        return _model_profile(self.model_id)

    # -- lazy clients --------------------------------------------------------------------------

    def _get_auth(self) -> KiroAuth:
        """The one :class:`KiroAuth` both transports share (so refreshes are single-flight)."""
        with _CLIENTS_LOCK:
            if self._auth is None:
                self._auth = KiroAuth(
                    api_key=self.api_key,
                    access_token=self.access_token,
                    profile_arn=self.profile_arn,
                    region=self.region,
                    db_path=self.db_path,
                    token_file=self.token_file,
                    read_only=self.read_only,
                )
            return self._auth

    def _get_transport(self) -> KiroTransport:
        auth = self._get_auth()
        with _CLIENTS_LOCK:
            if self._transport_sync is None:
                self._transport_sync = KiroTransport(
                    auth,
                    base_url=self.base_url,
                    timeout=self.timeout,
                    idle_timeout=self.idle_timeout,
                    max_retries=self.max_retries,
                    http_client=self.http_client,
                    origin=self.origin,
                )
            return self._transport_sync

    def _get_async_transport(self) -> AsyncKiroTransport:
        auth = self._get_auth()
        with _CLIENTS_LOCK:
            if self._transport_async is None:
                self._transport_async = AsyncKiroTransport(
                    auth,
                    base_url=self.base_url,
                    timeout=self.timeout,
                    idle_timeout=self.idle_timeout,
                    max_retries=self.max_retries,
                    http_client=self.http_async_client,
                    origin=self.origin,
                )
            return self._transport_async

    def close(self) -> None:
        """Close the sync HTTP client kiro-lc created (injected clients stay open)."""
        if self._transport_sync is not None:
            self._transport_sync.close()

    async def aclose(self) -> None:
        """Close the async HTTP client kiro-lc created (injected clients stay open)."""
        if self._transport_async is not None:
            await self._transport_async.aclose()

    # -- model catalogue ---------------------------------------------------------------------

    def list_models(self, *, refresh: bool = False) -> ModelList:
        """The models this account may use (ListAvailableModels), cached for 5 minutes."""
        cached = self._cached_models(refresh)
        if cached is not None:
            return cached
        models = self._get_transport().list_models()
        self._models = (time.monotonic(), models)
        return models

    async def alist_models(self, *, refresh: bool = False) -> ModelList:
        """Async twin of :meth:`list_models` (shares its cache)."""
        cached = self._cached_models(refresh)
        if cached is not None:
            return cached
        models = await self._get_async_transport().list_models()
        self._models = (time.monotonic(), models)
        return models

    def get_usage_limits(self) -> UsageLimits:
        """The account's credits used and left, plan and reset date (GetUsageLimits)."""
        return self._get_transport().get_usage_limits()

    async def aget_usage_limits(self) -> UsageLimits:
        """Async twin of :meth:`get_usage_limits`."""
        return await self._get_async_transport().get_usage_limits()

    def _cached_models(self, refresh: bool) -> ModelList | None:
        cached = self._models
        if cached is None or refresh or time.monotonic() - cached[0] > MODEL_LIST_TTL:
            return None
        return cached[1]

    def _model_hint(
        self, error: KiroModelNotFoundError, model_id: str, models: ModelList
    ) -> Exception:
        """``error`` restated with the account's real model list and the closest matches."""
        ids = models.ids()
        if not ids:
            return error
        guesses = suggest(model_id, ids)
        did_you_mean = f" Did you mean {' or '.join(repr(g) for g in guesses)}?" if guesses else ""
        return KiroModelNotFoundError(
            f"Kiro does not know the model {model_id!r}.{did_you_mean} Models available to this "
            f"account: {', '.join(ids)}.",
            status=error.status,
            reason=error.reason,
            request_id=error.request_id,
        )

    # -- generation ----------------------------------------------------------------------------

    def _start(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: Mapping[str, Any]
    ) -> tuple[ConversationRequest, ChunkAssembler]:
        """The Kiro request for one call and the assembler for its answer."""
        model_id = resolve_model_id(kwargs.get("model") or self.model)
        prepared = build_request(
            messages,
            model_id=model_id,
            tools=kwargs.get("tools"),
            tool_choice=kwargs.get("tool_choice"),
            response_format=kwargs.get("response_format"),
            profile_arn=self.profile_arn,
            origin=self.origin,
            conversation_id=str(uuid.uuid4()),
        )
        assembler = ChunkAssembler(
            model_name=model_id,
            blocks=prepared.tools_bound,
            tool_names=prepared.tool_names,
            stop=stop if stop is not None else self.stop,
            max_input_tokens=self._context_window(model_id),
            prompt_tokens=count_tokens_approximately(messages),
            include_usage=bool(kwargs.get("stream_usage", self.stream_usage)),
        )
        return prepared.request, assembler

    def _context_window(self, model_id: str) -> int | None:
        info = KNOWN_MODELS.get(model_id)
        if info is not None:
            return info.max_input_tokens
        listed = self._models[1].get(model_id) if self._models else None
        return listed.max_input_tokens if listed else None

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        request, assembler = self._start(messages, stop, kwargs)
        events = self._get_transport().stream(request)
        try:
            for event in events:
                for chunk in assembler.add(event):
                    yield ChatGenerationChunk(message=chunk)
                if assembler.stopped:
                    break
        except KiroModelNotFoundError as error:
            raise self._model_hint(error, request.model_id, self._safe_models()) from error
        finally:
            events.close()
        for chunk in assembler.finish():
            yield ChatGenerationChunk(message=chunk)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        request, assembler = self._start(messages, stop, kwargs)
        events = self._get_async_transport().stream(request)
        try:
            async for event in events:
                for chunk in assembler.add(event):
                    yield ChatGenerationChunk(message=chunk)
                if assembler.stopped:
                    break
        except KiroModelNotFoundError as error:
            models = await self._asafe_models()
            raise self._model_hint(error, request.model_id, models) from error
        finally:
            await events.aclose()
        for chunk in assembler.finish():
            yield ChatGenerationChunk(message=chunk)

    def _safe_models(self) -> ModelList:
        try:
            return self.list_models()
        except Exception:  # the hint is best effort; the original error matters
            return ModelList()

    async def _asafe_models(self) -> ModelList:
        try:
            return await self.alist_models()
        except Exception:  # the hint is best effort; the original error matters
            return ModelList()

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        kwargs.setdefault("stream_usage", True)
        return _lone_text_to_str(generate_from_stream(self._stream(messages, stop, **kwargs)))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        kwargs.setdefault("stream_usage", True)
        result = await agenerate_from_stream(self._astream(messages, stop, **kwargs))
        return _lone_text_to_str(result)

    # -- tools and structured output ---------------------------------------------------------

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        parallel_tool_calls: bool | None = None,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools (functions, pydantic models, ``BaseTool``\\ s, OpenAI or Anthropic dicts).

        ``tool_choice`` is emulated: ``"none"`` sends no tools; ``"any"``/``"required"``/a tool
        name add an instruction to the last user turn. ``parallel_tool_calls`` is accepted and
        ignored (Kiro has no such switch).
        """
        formatted = [
            dict(t)
            if isinstance(t, Mapping) and "toolSpecification" in t
            else convert_to_openai_tool(t, strict=strict)
            for t in tools
        ]
        _, names = convert_tools(formatted)
        if tool_choice is not None:
            normalize_tool_choice(tool_choice, list(names.values()))
            kwargs["tool_choice"] = tool_choice
        return self.bind(tools=formatted, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type | None = None,
        *,
        method: _StructuredMethod = "function_calling",
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | Any]:
        """A runnable that answers with ``schema``-shaped output.

        ``function_calling`` (default) and ``json_schema`` force a tool call shaped by
        ``schema`` (Kiro has no native schema mode); ``json_mode`` asks for a JSON-only answer
        (quoting the schema when given) and parses it.
        """
        if kwargs:
            raise ValueError(f"Unsupported arguments for with_structured_output: {sorted(kwargs)}")
        is_pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
        trace = {"kwargs": {"method": method, "strict": strict}, "schema": schema}
        parser: Runnable[Any, Any]
        if method in ("function_calling", "json_schema"):
            if schema is None:
                raise ValueError(f"method={method!r} needs a schema")
            name = convert_to_openai_tool(schema)["function"]["name"]
            llm = self.bind_tools(
                [schema], tool_choice=name, strict=strict, ls_structured_output_format=trace
            )
            parser = (
                PydanticToolsParser(tools=[schema], first_tool_only=True)  # type: ignore[list-item]
                if is_pydantic
                else JsonOutputKeyToolsParser(key_name=name, first_tool_only=True)
            )
        elif method == "json_mode":
            llm = self.bind(**_json_mode_kwargs(schema, trace))
            parser = (
                PydanticOutputParser(pydantic_object=schema)  # type: ignore[arg-type]
                if is_pydantic
                else JsonOutputParser()
            )
        else:
            raise ValueError(
                f"Unknown method {method!r}: use 'function_calling', 'json_schema' or 'json_mode'."
            )
        if not include_raw:
            return llm | parser
        parse_assign = RunnablePassthrough.assign(
            parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
        )
        parse_none = RunnablePassthrough.assign(parsed=lambda _: None)
        with_fallback = parse_assign.with_fallbacks([parse_none], exception_key="parsing_error")
        return RunnableMap(raw=llm) | with_fallback


def _json_mode_kwargs(
    schema: dict[str, Any] | type | None, trace: dict[str, Any]
) -> dict[str, Any]:
    """``bind`` arguments for JSON mode: the ``response_format`` and the tracing format."""
    if schema is None:
        return {"response_format": {"type": "json_object"}}
    json_schema = convert_to_json_schema(schema)
    name = str(json_schema.get("title") or "response")
    return {
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": name, "schema": json_schema},
        },
        "ls_structured_output_format": trace,
    }
