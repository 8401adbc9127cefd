"""langchain-tests' standard unit suite for ``ChatKiro`` (no network: clients are lazy)."""

from __future__ import annotations

from typing import Any

from langchain_tests.unit_tests import ChatModelUnitTests

from kiro_lc.chat_models import ChatKiro


class TestChatKiroUnit(ChatModelUnitTests):
    """The standard unit tests, unmodified."""

    @property
    def chat_model_class(self) -> type[ChatKiro]:
        return ChatKiro

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": "claude-sonnet-4-5"}
