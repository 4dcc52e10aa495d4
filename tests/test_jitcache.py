"""numba's cache directory follows the package sources (mmbot.jitcache)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mmbot import jitcache


def _tree(root: Path) -> None:
    (root / "sub").mkdir(parents=True)
    (root / "a.py").write_text("x = 1\n")
    (root / "sub" / "b.py").write_text("y = 2\n")
    (root / "data.json").write_text("{}")


def test_digest_changes_with_any_python_source_and_only_with_them(tmp_path: Path) -> None:
    _tree(tmp_path)
    d0 = jitcache.source_digest(tmp_path)
    assert jitcache.source_digest(tmp_path) == d0
    (tmp_path / "data.json").write_text('{"k": 1}')
    assert jitcache.source_digest(tmp_path) == d0  # not a source
    (tmp_path / "sub" / "b.py").write_text("y = 3\n")  # a callee in another file
    d1 = jitcache.source_digest(tmp_path)
    assert d1 != d0
    (tmp_path / "sub" / "b.py").rename(tmp_path / "sub" / "c.py")  # same bytes, other module
    assert jitcache.source_digest(tmp_path) not in (d0, d1)


def test_configure_uses_a_digest_directory_and_drops_older_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tree(tmp_path)
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    old = tmp_path / "__pycache__" / "numba-0123456789abcdef"
    old.mkdir(parents=True)
    (old / "f.nbi").write_bytes(b"")
    keep = tmp_path / "__pycache__" / "a.cpython-311.pyc"
    keep.write_bytes(b"")
    d = jitcache.configure(tmp_path)
    assert d == tmp_path / "__pycache__" / ("numba-" + jitcache.source_digest(tmp_path))
    assert d.is_dir() and os.environ["NUMBA_CACHE_DIR"] == str(d)
    assert not old.exists() and keep.exists()


def test_a_user_numba_cache_dir_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _tree(tmp_path)
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    assert jitcache.configure(tmp_path) is None
    assert os.environ["NUMBA_CACHE_DIR"] == str(tmp_path / "mine")


def test_numba_caches_mmbot_code_in_the_digest_directory() -> None:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    code = "import numba, mmbot, mmbot.jitcache as j; print(numba.config.CACHE_DIR); print(j.source_digest())"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[0].endswith("numba-" + out[1]), out
