"""ANSWERER picks the answerer; the chat endpoint's settings are checked at start-up."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from adapters.answering.extractive import ExtractiveAnswerer
from adapters.answering.openai_chat import OpenAIChatAnswerer
from interfaces.answering import build_answerer
from interfaces.settings import Settings


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


def test_extractive_is_the_default() -> None:
    assert isinstance(build_answerer(settings()), ExtractiveAnswerer)


def test_openai_builds_the_chat_client_with_its_model() -> None:
    answerer = build_answerer(
        settings(answerer="openai", openai_api_key="sk-x", openai_model="local-llm")
    )
    assert isinstance(answerer, OpenAIChatAnswerer)
    assert answerer.model == "local-llm"
    answerer.close()


@pytest.mark.parametrize(
    "values",
    [
        {"answerer": "gpt"},
        {"openai_base_url": "file:///etc/passwd"},
        {"openai_timeout_seconds": 0},
        {"openai_model": ""},
    ],
)
def test_bad_answerer_settings_are_refused(values: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        settings(**values)
