"""Ingestion throughput, each figure against a baseline measured in the same run.

`python -m bench.ingest [--pages N] [--rounds R] [--documents D] [--skip-ocr]`

OCR: pages per second of the extraction path (a forked child per document under its memory
limit, header guards, pytesseract; for a scanned PDF also pdfinfo and pdftoppm per page)
against the bare `tesseract` command on the same rendered pages. Both sides run Tesseract
single-threaded (OMP_THREAD_LIMIT=1, as the extraction child does) and take turns, so load from
elsewhere on the machine falls on both. Goal: ratio >= 0.8.

Text documents per second end to end (upload over HTTP to searchable, on the embedded
PostgreSQL) against the bare pipeline (extract, chunk, embed) of the same documents: its own
section below.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
import warnings
from pathlib import Path
from uuid import UUID, uuid4

import httpx
import psycopg
from pdf2image import convert_from_path
from starlette.exceptions import StarletteDeprecationWarning

from adapters.extraction.config import ExtractionLimits, OcrOptions
from adapters.extraction.dispatcher import FileExtractor
from adapters.postgres.database import DatabaseUrl
from application.ingestion_ports import ExtractedText
from bench._support import scratch_database
from domain.chunking import chunk_pages
from interfaces.embedding import shared_embedder
from interfaces.extraction import build_extractor
from interfaces.http.app import create_app
from interfaces.reactors import start_reactors
from interfaces.runtime import build_runtime, start_ingest, start_projections
from interfaces.settings import Settings
from tests.support.contexts import service as service_context
from tests.support.sample_files import OCR_WORDS, image_only_pdf
from tests.support.uploads import upload

with warnings.catch_warnings():
    # Starlette prefers `httpx2` for its TestClient and warns on `httpx` (fully supported).
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

_DPI = 300


def _page_lines(page: int) -> list[str]:
    """Fifteen lines of words, different on each page."""
    words = [*OCR_WORDS, "report", "project", "budget", "quarter", "review", "signed"]
    return [
        " ".join(words[(page * 7 + line * 3 + k) % len(words)] for k in range(6))
        for line in range(15)
    ]


def _bare_tesseract(image: Path) -> float:
    """Seconds the `tesseract` command takes over one page."""
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    started = time.perf_counter()
    subprocess.run(
        ["tesseract", str(image), "stdout", "-l", "eng"],  # noqa: S607 - the baseline
        check=True,
        capture_output=True,
        env=env,
    )
    return time.perf_counter() - started


def _ours(extractor: FileExtractor, path: Path, mime: str) -> float:
    """Seconds the extractor takes over one single-page document."""
    started = time.perf_counter()
    outcome = extractor.extract(path, mime)
    elapsed = time.perf_counter() - started
    if not isinstance(outcome, ExtractedText) or len(outcome.pages) != 1:
        raise SystemExit(f"extraction of {path.name} gave {outcome}")
    return elapsed


def ocr_pages_per_second(pages: int, rounds: int) -> None:
    """Print OCR pages per second (images, and scanned PDFs) with the ratio to bare tesseract.

    Page by page, the three take turns in a rotating order: on a shared machine, a burst of
    load elsewhere lands on all three alike instead of on whichever ran in that minute.
    """
    extractor = FileExtractor(ExtractionLimits(), OcrOptions(dpi=_DPI))
    with tempfile.TemporaryDirectory(prefix="teaim-bench-ocr-") as tmp:
        folder = Path(tmp)
        pdfs, images = [], []
        for index in range(pages):
            pdf = folder / f"scan-{index}.pdf"
            pdf.write_bytes(image_only_pdf([_page_lines(index)]))
            pdfs.append(pdf)
            # The page as the PDF path renders it, for the bare command and the image path.
            (rendered,) = convert_from_path(
                str(pdf), dpi=_DPI, output_folder=tmp, paths_only=True, fmt="png", grayscale=True
            )
            images.append(Path(str(rendered)))
        # Warm-up: the extractor's zygote starts, Tesseract's data files reach the page cache.
        _ours(extractor, images[0], "image/png")
        _bare_tesseract(images[0])
        runs = {
            "bare": lambda i: _bare_tesseract(images[i]),
            "image": lambda i: _ours(extractor, images[i], "image/png"),
            "pdf": lambda i: _ours(extractor, pdfs[i], "application/pdf"),
        }
        seconds = dict.fromkeys(runs, 0.0)
        turn = 0
        for _ in range(rounds):
            for index in range(pages):
                names = list(runs)
                for name in names[turn % 3 :] + names[: turn % 3]:
                    seconds[name] += runs[name](index)
                turn += 1
    extractor.close()
    total = pages * rounds
    print(f"OCR, {pages} A4 pages at {_DPI} dpi x {rounds} rounds, one Tesseract thread each")
    print(f"bare tesseract: {total / seconds['bare']:.2f} pages/s")
    print(f"extractor, PNG pages: {total / seconds['image']:.2f} pages/s")
    print(f"extractor, scanned PDF pages (pdftoppm + OCR): {total / seconds['pdf']:.2f} pages/s")
    print(f"ratio images/bare: {seconds['bare'] / seconds['image']:.2f}x")
    print(f"ratio scanned PDF/bare: {seconds['bare'] / seconds['pdf']:.2f}x")


# Text documents per second, end to end ---------------------------------------------------
# The service: N distinct Markdown documents uploaded over HTTP (the real app in a TestClient,
# its lifespan running) to one project, with what `teaim serve` runs in-process: the projection
# host, the ingestion reactor, the queue's workers (INGEST_WORKERS) running the real pipeline
# (guarded extractor, chunker, MiniLM through the embedding cache). The clock runs from the
# first upload until every document has live chunks with vectors in `rag_chunks` (what the
# hybrid search ranks); each is then found by a search over HTTP, outside the clock.
# The baseline: the same documents through the bare pipeline (extraction, chunking and the
# same model's embedding, in one thread) without HTTP, blob store, queue, events or
# projection: the ratio is what the service's path costs over the work itself.

_SETTLE_SECONDS = 600.0


def _text_document(index: int) -> str:
    """A Markdown document of a few paragraphs (two or three chunks) with a unique token."""
    words = [*OCR_WORDS, "report", "project", "budget", "quarter", "review", "signed"]
    paragraphs = [
        " ".join(words[(index * 5 + p * 11 + k) % len(words)] for k in range(60)) for p in range(4)
    ]
    return f"# Minutes {index}\n\nReference token zq{index:05d}x.\n\n" + "\n\n".join(paragraphs)


def _bare_pipeline(documents: list[str], folder: Path, settings: Settings) -> float:
    """Seconds to extract, chunk and embed every document in one thread (after a warm-up)."""
    extractor = build_extractor(settings)
    embedder = shared_embedder(settings)
    paths = []
    for index, text in enumerate(documents):
        path = folder / f"bare-{index}.md"
        path.write_text(text)
        paths.append(path)

    def one(path: Path) -> None:
        outcome = extractor.extract(path, "text/markdown")
        if not isinstance(outcome, ExtractedText):
            raise SystemExit(f"extraction of {path.name} gave {outcome}")
        chunks = chunk_pages(outcome.pages)
        for at in range(0, len(chunks), settings.embed_batch):
            embedder.embed([c.text for c in chunks[at : at + settings.embed_batch]])

    try:
        one(paths[0])  # warm-up: the model's first call, the extractor's set-up
        started = time.perf_counter()
        for path in paths:
            one(path)
        return time.perf_counter() - started
    finally:
        extractor.close()


def _searchable(url: DatabaseUrl, project: UUID) -> int:
    """Documents of the project with live, embedded chunks in the index."""
    with psycopg.connect(url.libpq()) as conn:
        row = conn.execute(
            "SELECT count(DISTINCT source_id) FROM rag_chunks WHERE project_id = %s"
            " AND valid_to IS NULL AND embedding IS NOT NULL",
            (project,),
        ).fetchone()
    return 0 if row is None else int(row[0])


def _wait_searchable(url: DatabaseUrl, project: UUID, count: int) -> None:
    """Poll the index until `count` documents are searchable (bounded)."""
    deadline = time.monotonic() + _SETTLE_SECONDS
    while _searchable(url, project) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {_searchable(url, project)} of {count} became searchable")
        time.sleep(0.02)


def _service(documents: list[str], url: DatabaseUrl, settings: Settings) -> float:
    """Seconds from the first upload until every document is searchable (after a warm-up)."""
    runtime = build_runtime(settings)
    try:
        app = create_app(runtime=runtime, own_runtime=False)
        with TestClient(app) as client:
            start_projections(runtime)
            if start_ingest(runtime) is None or runtime.ingest_queue is None:
                raise SystemExit("the ingestion workers did not start")
            start_reactors(runtime, runtime.ingest_queue)
            org = uuid4()
            runtime.app.create_org(ctx=service_context(org, "bench"), name="Bench")
            headers = {"X-Dev-User": "bench", "X-Dev-Org": str(org), "X-Dev-Role": "owner"}
            created = client.post(
                "/api/projects", json={"code": "BENCH", "name": "Bench"}, headers=headers
            )
            created.raise_for_status()
            project = UUID(created.json()["id"])

            def send(name: str, text: str) -> None:
                upload(
                    client, project, headers, filename=name, data=text.encode(),
                    content_type="text/markdown",
                ).raise_for_status()  # fmt: skip

            send("warm-up.md", "# Warm-up\n\nThe model and the workers start here.")
            _wait_searchable(url, project, 1)
            started = time.perf_counter()
            for index, text in enumerate(documents):
                send(f"minutes-{index}.md", text)
            _wait_searchable(url, project, len(documents) + 1)
            elapsed = time.perf_counter() - started
            _check_found(client, project, headers, len(documents))
            return elapsed
    finally:
        runtime.close()


def _check_found(client: httpx.Client, project: UUID, headers: dict[str, str], n: int) -> None:
    """Every document is found by its token over HTTP (what "searchable" means). Among the
    first two: only its chunk matches the token's words, so reciprocal rank fusion puts it
    at or above 1/61, where a chunk the vector ranking alone put first can tie with it."""
    for index in range(n):
        response = client.get(
            f"/api/projects/{project}/rag/search",
            params={"q": f"zq{index:05d}x", "k": 2},
            headers=headers,
        )
        response.raise_for_status()
        names = [hit["source_name"] for hit in response.json()["items"]]
        if f"minutes-{index}.md" not in names:
            raise SystemExit(f"token {index} found {names}, not its document")


def text_documents_end_to_end(count: int) -> None:
    """Print text documents per second from upload to searchable, and the bare pipeline's."""
    documents = [_text_document(index) for index in range(count)]
    with tempfile.TemporaryDirectory(prefix="teaim-bench-e2e-") as tmp, scratch_database() as url:
        settings = Settings(
            _env_file=None,
            database_url=url.libpq(),
            data_dir=Path(tmp) / "data",
            dev_auth=True,
            run_projections=False,
            run_scheduler=False,
            db_pool_size=4,
            rate_limit_max=0,
            rate_limits={"org_uploads": "1000000 per minute", "org_commands": "1000000 per minute"},
        )
        bare = _bare_pipeline(documents, Path(tmp), settings)
        service = _service(documents, url, settings)
    chunks = sum(len(chunk_pages([d])) for d in documents)
    print(
        f"Text documents end to end, {count} Markdown documents ({chunks} chunks),"
        f" {settings.ingest_workers} ingestion workers"
    )
    print(f"bare pipeline (extract + chunk + embed, one thread): {count / bare:.1f} docs/s")
    print(f"service (HTTP upload -> queue -> pipeline -> index): {count / service:.1f} docs/s")
    print(f"ratio service/bare: {bare / service:.2f}x")


def main() -> None:
    """Run every section."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--documents", type=int, default=100, help="text documents end to end")
    parser.add_argument("--skip-ocr", action="store_true", help="only the end-to-end section")
    args = parser.parse_args()
    if not args.skip_ocr:
        ocr_pages_per_second(args.pages, args.rounds)
    text_documents_end_to_end(args.documents)


if __name__ == "__main__":
    main()
