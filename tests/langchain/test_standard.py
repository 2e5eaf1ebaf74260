"""The langchain-tests standard suites, run against MixLLMChat over scripted offline children.

The suite forbids overriding its tests, so its own skip messages stand; why each applies here:

- ``test_init_from_env`` ("init_from_env_params not specified"): MixLLMChat reads no credentials
  or settings from the environment; its children do.
- ``test_serdes`` ("Model is not serializable"): MixLLMChat holds a live router and child models;
  persist the router with ``MixLLMRouter.save`` instead.
- ``test_json_mode``, ``test_pdf_inputs``, ``test_audio_inputs``, ``test_image_inputs``,
  ``test_image_tool_message``, ``test_pdf_tool_message``, ``test_anthropic_inputs``: the scripted
  children take none of these inputs. MixLLMChat passes messages and content blocks to the chosen
  child unchanged, so these test the child, not the router; the image/PDF/audio ones also
  download files, which an offline run cannot.
- ``test_stream_time`` ("VCR not set up"): a benchmark replaying recorded HTTP calls; the scripted
  children make no HTTP calls.
"""

from __future__ import annotations

from typing import Any

from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from mixllm_core.testing import HashingEncoder
from mixllm_langchain import MixLLMChat
from mixllm_langchain.testing import ScriptedChatModel


class _Params:
    @property
    def chat_model_class(self) -> type[MixLLMChat]:
        return MixLLMChat

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {
            "models": {
                "cheap-model": ScriptedChatModel(model_name="cheap-model"),
                "pricey-model": ScriptedChatModel(model_name="pricey-model"),
            },
            "prices": {"cheap-model": (0.1, 0.4), "pricey-model": (5.0, 15.0)},
            "lam": 0.0,  # cost first: unpinned calls go to cheap-model, so the override is seen
            "encoder": HashingEncoder(),
        }

    @property
    def model_override_value(self) -> str:
        return "pricey-model"


class TestMixLLMChatUnit(_Params, ChatModelUnitTests):
    pass


class TestMixLLMChatIntegration(_Params, ChatModelIntegrationTests):
    pass
