"""The unsubscribe key: the setting, else one random key per DATA_DIR, shared and private."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from interfaces.settings import Settings
from interfaces.unsubscribe_key import KEY_FILE, shared_key_file, unsubscribe_key


def settings(data_dir: Path, key: str | None = None) -> Settings:
    secret = None if key is None else SecretStr(key)
    return Settings(_env_file=None, data_dir=data_dir, unsubscribe_key=secret)


def test_unset_a_random_key_is_made_once_kept_private_and_reused(tmp_path: Path) -> None:
    first = unsubscribe_key(settings(tmp_path))
    path = tmp_path / KEY_FILE
    assert len(first) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert unsubscribe_key(settings(tmp_path)) == first
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind
    assert unsubscribe_key(settings(tmp_path / "elsewhere")) != first


def test_the_setting_wins_and_must_be_long_enough(tmp_path: Path) -> None:
    assert unsubscribe_key(settings(tmp_path, "k" * 32)) == b"k" * 32
    assert not (tmp_path / KEY_FILE).exists()
    with pytest.raises(ValidationError, match="UNSUBSCRIBE_KEY"):
        settings(tmp_path, "short")


def test_racing_processes_all_end_up_with_one_key(tmp_path: Path) -> None:
    for attempt in range(10):
        path = tmp_path / str(attempt) / KEY_FILE
        start = threading.Barrier(8)
        keys: list[bytes] = []

        def make(
            start: threading.Barrier = start, path: Path = path, keys: list[bytes] = keys
        ) -> None:
            start.wait(timeout=10)
            keys.append(shared_key_file(path))

        threads = [threading.Thread(target=make) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
        assert len(keys) == 8
        assert len(set(keys)) == 1


def test_a_damaged_key_file_stops_startup_instead_of_being_replaced(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE
    path.parent.mkdir(parents=True)
    path.write_text("abcd\n")
    with pytest.raises(RuntimeError, match="breaks every unsubscribe link"):
        shared_key_file(path)
    assert path.read_text() == "abcd\n"
