"""The OpenAI-compatible answerer: the prompt holds only the question and one project's chunks;
a recorded response's citations map back to those chunks. No real endpoint is ever called."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

from adapters.answering.openai_chat import (
    INSTRUCTION,
    OpenAIChatAnswerer,
    build_messages,
    parse_answer,
    source_label,
)
from application.ingestion_ports import ChunkHit
from application.retrieval import AnswerUnavailableError

ORG, PROJECT = uuid4(), uuid4()

# A chat completions response as OpenAI's API returns it (recorded shape, ids shortened).
RECORDED = {
    "id": "chatcmpl-9xYz",
    "object": "chat.completion",
    "created": 1767225600,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": (
                    "The launch is on 14 March 2031 [2]. Sign-off comes first [2][1]."
                    " The moon is cheese [7]."
                ),
                "refusal": None,
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 412, "completion_tokens": 31, "total_tokens": 443},
    "system_fingerprint": "fp_0ba0d124f1",
}


def hit(text: str, name: str, page: int | None, *, project: UUID = PROJECT) -> ChunkHit:
    return ChunkHit(
        org_id=ORG,
        project_id=project,
        source_kind="artifact",
        source_id=uuid4(),
        source_name=name,
        page=page,
        chunk_index=0,
        text=text,
        score=0.2,
    )


CHUNKS = [
    hit("Sign-off by the client is required before launch.", "plan.docx", None),
    hit("The launch date is 14 March 2031.", "kickoff.pdf", 3),
]


def test_the_prompt_is_the_instruction_the_question_and_the_chunks_and_nothing_else() -> None:
    question = "When is the launch?"
    messages = build_messages(question, CHUNKS)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[0]["content"] == INSTRUCTION
    expected_user = (
        "Sources:\n\n"
        f"{source_label(1, CHUNKS[0])}\n{CHUNKS[0].text}\n\n"
        f"{source_label(2, CHUNKS[1])}\n{CHUNKS[1].text}\n\n"
        f"Question: {question}"
    )
    assert messages[1]["content"] == expected_user
    assert source_label(2, CHUNKS[1]) == "[2] kickoff.pdf, page 3"
    # Nothing identifying the tenant travels: no org or project id, no other text.
    serialised = json.dumps(messages)
    assert str(ORG) not in serialised
    assert str(PROJECT) not in serialised


def test_chunks_of_two_projects_are_refused() -> None:
    mixed = [*CHUNKS, hit("Another tenant's secret.", "x.pdf", 1, project=uuid4())]
    with pytest.raises(ValueError, match="one project"):
        build_messages("q?", mixed)


def test_the_prompt_is_bounded() -> None:
    many = [hit("word " * 1000, f"d{i}.txt", 1) for i in range(40)]
    content = build_messages("q?", many)[1]["content"]
    assert len(content) < 24_000 + 40 * 40 + 200


def test_recorded_response_citations_map_back_to_the_cited_chunks() -> None:
    answer = parse_answer(RECORDED, CHUNKS, "gpt-4o-mini")
    # Source 2 is cited first, so it is citation [1]; the invented source [7] is dropped.
    assert answer.text == (
        "The launch is on 14 March 2031 [1]. Sign-off comes first [1][2]. The moon is cheese."
    )
    assert [c.source_id for c in answer.citations] == [CHUNKS[1].source_id, CHUNKS[0].source_id]
    assert answer.citations[0].page == 3
    assert answer.citations[0].snippet == CHUNKS[1].text
    assert answer.answered_by == "gpt-4o-mini"


@pytest.mark.parametrize(
    "body", [{}, {"choices": []}, {"choices": [{"message": {"content": ""}}]}, []]
)
def test_a_response_without_an_answer_is_unavailable(body: Any) -> None:
    with pytest.raises(AnswerUnavailableError):
        parse_answer(body, CHUNKS, "m")


def test_the_client_posts_the_prompt_and_reads_the_answer() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=RECORDED)

    answerer = OpenAIChatAnswerer(
        base_url="https://llm.example.test/v1",
        api_key="sk-test",
        model="gpt-4o-mini",
        timeout_seconds=5,
        transport=httpx.MockTransport(handler),
    )
    answer = answerer.answer("When is the launch?", CHUNKS)
    (request,) = seen
    assert str(request.url) == "https://llm.example.test/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test"
    sent = json.loads(request.content)
    assert sent["model"] == "gpt-4o-mini"
    assert sent["messages"] == build_messages("When is the launch?", CHUNKS)
    assert len(answer.citations) == 2
    answerer.close()


@pytest.mark.parametrize(
    "response",
    [httpx.Response(500, json={}), httpx.Response(200, content=b"not json"), None],
    ids=["500", "not-json", "unreachable"],
)
def test_endpoint_failures_are_unavailable_not_crashes(response: httpx.Response | None) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if response is None:
            raise httpx.ConnectError("refused", request=request)
        return response

    answerer = OpenAIChatAnswerer(
        base_url="https://llm.example.test/v1",
        api_key=None,
        model="m",
        timeout_seconds=5,
        transport=httpx.MockTransport(handler),
    )
    with pytest.raises(AnswerUnavailableError):
        answerer.answer("q?", CHUNKS)
