"""langchain-tests' standard integration suite for ``ChatKiro``, against the ``KiroEmulator``.

The multimodal tests of the suite download their inputs from the internet, so their flags stay
off; ``tests/test_chat_models.py`` covers images with local bytes instead.
"""

from __future__ import annotations

import os
from typing import Any

from langchain_tests.integration_tests import ChatModelIntegrationTests

from kiro_lc.chat_models import ChatKiro


class TestChatKiroStandard(ChatModelIntegrationTests):
    """The standard integration tests, unmodified."""

    @property
    def chat_model_class(self) -> type[ChatKiro]:
        return ChatKiro

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {
            "model": "claude-sonnet-4-5",
            "base_url": os.environ["KIRO_TEST_BASE_URL"],
            "api_key": os.environ["KIRO_TEST_API_KEY"],
        }

    @property
    def model_override_value(self) -> str:
        return "claude-haiku-4.5"

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def supports_anthropic_inputs(self) -> bool:
        return True
