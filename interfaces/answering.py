"""Wiring of the answerer `rag/ask` uses, chosen by the ANSWERER setting."""

from __future__ import annotations

from adapters.answering.extractive import ExtractiveAnswerer
from adapters.answering.openai_chat import OpenAIChatAnswerer
from application.ingestion_ports import Answerer
from interfaces.settings import Settings


def build_answerer(settings: Settings) -> Answerer:
    """The extractive answerer, or the OpenAI-compatible chat client (ANSWERER=openai)."""
    if settings.answerer == "openai":
        key = settings.openai_api_key
        return OpenAIChatAnswerer(
            base_url=settings.openai_base_url,
            api_key=None if key is None else key.get_secret_value(),
            model=settings.openai_model,
            timeout_seconds=settings.openai_timeout_seconds,
        )
    return ExtractiveAnswerer()
