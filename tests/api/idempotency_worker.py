"""An API process for the kill test: `python -m tests.api.idempotency_worker URL PORT`.

Serves the real app on the given database and port, except that recording an Idempotency-Key's
answer blocks forever after printing `committed`: the command's events are in the store, its
answer is not, and the test kills the process there (SIGKILL, no cleanup of any kind).
"""

from __future__ import annotations

import sys
import threading
from typing import Any

import uvicorn

from interfaces.http.app import create_app
from interfaces.runtime import build_runtime
from tests.api.conftest import make_settings


def main(url: str, port: int) -> None:
    runtime = build_runtime(make_settings(url))
    store = runtime.idempotency

    def hang(*_args: Any, **_kwargs: Any) -> None:
        print("committed", flush=True)
        threading.Event().wait()

    store.complete = hang  # type: ignore[method-assign]
    app = create_app(runtime=runtime, own_runtime=True)
    print("serving", flush=True)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
