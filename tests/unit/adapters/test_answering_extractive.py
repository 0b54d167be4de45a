"""The extractive answerer: best-matching sentences, each cited; deterministic; honest when
nothing matches."""

from __future__ import annotations

import re
from uuid import UUID, uuid4

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.answering.extractive import (
    NOTHING_FOUND,
    NOTHING_RELEVANT,
    ExtractiveAnswerer,
    sentences,
    terms,
)
from application.ingestion_ports import ChunkHit

ORG, PROJECT = uuid4(), uuid4()


def hit(
    text: str, *, name: str = "doc.pdf", page: int | None = 1, source: UUID | None = None
) -> ChunkHit:
    return ChunkHit(
        org_id=ORG,
        project_id=PROJECT,
        source_kind="artifact",
        source_id=source or uuid4(),
        source_name=name,
        page=page,
        chunk_index=0,
        text=text,
        score=0.1,
    )


def test_no_chunks_says_nothing_was_found() -> None:
    answer = ExtractiveAnswerer().answer("When is the launch?", [])
    assert answer.text == NOTHING_FOUND
    assert answer.citations == []
    assert answer.answered_by == "extractive"


def test_chunks_that_share_no_word_with_the_question_do_not_answer_it() -> None:
    chunks = [hit("The cafeteria serves soup on Tuesdays. Parking is behind building C.")]
    answer = ExtractiveAnswerer().answer("What is the vendor's warranty period?", chunks)
    assert answer.text == NOTHING_RELEVANT
    assert answer.citations == []


def test_the_best_sentence_comes_first_with_its_citation() -> None:
    budget = hit(
        "Minutes of the kickoff. The launch date is 14 March 2031 after sign-off."
        " Catering was fine.",
        name="kickoff.docx",
        page=2,
    )
    other = hit("The budget was approved by finance. Risks are tracked weekly.", name="risks.md")
    answer = ExtractiveAnswerer().answer("When is the launch date?", [other, budget])
    first = answer.text.split(" [")[0]
    assert first == "The launch date is 14 March 2031 after sign-off."
    assert answer.citations[0].source_id == budget.source_id
    assert answer.citations[0].source_name == "kickoff.docx"
    assert answer.citations[0].page == 2
    assert "launch date" in answer.citations[0].snippet
    assert "Catering" not in answer.text


def test_every_marker_names_a_citation_and_every_citation_is_used() -> None:
    chunks = [
        hit("Vendor Acme supplies the sensors. Acme ships in May."),
        hit("The sensors need calibration by Acme engineers. Lunch is at noon."),
        hit("Unrelated text about holidays."),
    ]
    answer = ExtractiveAnswerer().answer("Which vendor supplies the sensors from Acme?", chunks)
    markers = [int(m) for m in re.findall(r"\[(\d+)\]", answer.text)]
    assert markers
    assert set(markers) == set(range(1, len(answer.citations) + 1))
    assert len(markers) <= 3
    # Every quoted sentence is text of a given chunk, verbatim.
    for sentence in re.split(r" \[\d+\] ?", answer.text):
        if sentence:
            assert any(sentence.rstrip(".") in c.text for c in chunks), sentence


def test_stopwords_alone_do_not_match() -> None:
    chunks = [hit("It is what it is, and this is that.")]
    assert ExtractiveAnswerer().answer("What is this?", chunks).text == NOTHING_RELEVANT


def test_sentences_and_terms() -> None:
    assert sentences("One. Two? Three!\nFour") == ["One.", "Two?", "Three!", "Four"]
    assert terms("The Launch DATE of v2") == ["launch", "date", "v2"]


@settings(max_examples=60, deadline=None)
@given(
    texts=st.lists(st.text(min_size=0, max_size=300), min_size=0, max_size=6),
    question=st.text(min_size=1, max_size=200),
)
def test_deterministic_bounded_and_citing_only_given_chunks(
    texts: list[str], question: str
) -> None:
    chunks = [hit(t) for t in texts]
    first = ExtractiveAnswerer().answer(question, chunks)
    again = ExtractiveAnswerer().answer(question, list(chunks))
    assert first == again
    given_ids = {c.source_id for c in chunks}
    assert all(c.source_id in given_ids for c in first.citations)
    assert len(first.citations) <= 3
    assert len(first.text) <= 3 * 410
