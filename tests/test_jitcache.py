"""numba's cache directory follows the package sources (mmbot.jitcache)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mmbot import jitcache


def _tree(root: Path) -> None:
    """A package ``root.name`` with one compiled module (a) importing a callee (sub.b) and a
    module no compiled code imports (c)."""
    pkg = root.name
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "sub" / "__init__.py").write_text("")
    (root / "a.py").write_text(f"from numba import njit\nfrom {pkg}.sub import b\n")
    (root / "sub" / "b.py").write_text("y = 2\n")
    (root / "c.py").write_text(f"import {pkg}.a\nx = 1\n")
    (root / "data.json").write_text("{}")


def test_digest_changes_with_the_compiled_closure_and_only_with_it(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    _tree(root)
    d0 = jitcache.source_digest(root)
    assert jitcache.source_digest(root) == d0
    (root / "data.json").write_text('{"k": 1}')
    assert jitcache.source_digest(root) == d0  # not a source
    (root / "c.py").write_text("import pkg.a\nx = 2\n")
    assert jitcache.source_digest(root) == d0  # no compiled code imports it
    (root / "sub" / "b.py").write_text("y = 3\n")  # a callee (or constant) in another file
    d1 = jitcache.source_digest(root)
    assert d1 != d0
    (root / "sub" / "__init__.py").write_text("z = 0\n")  # a parent package runs on import
    assert jitcache.source_digest(root) not in (d0, d1)


def test_closure_follows_relative_aliased_and_parenthesised_imports(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    _tree(root)
    (root / "sub" / "e.py").write_text("")
    (root / "sub" / "f.py").write_text("from ..g import h\n")
    (root / "g.py").write_text("h = 1\n")
    (root / "i.py").write_text("")
    (root / "a.py").write_text(
        "import numba\nfrom .sub import (\n    e,  # first\n    f,\n)\nimport pkg.i as ii\n"
    )
    names = {p.relative_to(root).as_posix() for p in jitcache.compiled_closure(root)}
    assert names == {
        "__init__.py",
        "a.py",
        "sub/__init__.py",
        "sub/e.py",
        "sub/f.py",
        "g.py",
        "i.py",
    }


def test_the_package_closure_holds_the_compiled_core_not_the_soak_runner() -> None:
    names = {p.relative_to(jitcache.PACKAGE_DIR).as_posix() for p in jitcache.compiled_closure()}
    assert {"events.py", "sim/venue.py", "strategy/glft.py", "execution/guards.py"} <= names
    assert "soak/runner.py" not in names and "soak/autotune.py" not in names
    assert not {"cli.py", "api.py", "sweep/remote.py", "sweep/executors.py"} & names
    for p in jitcache.PACKAGE_DIR.rglob("*.py"):
        if "__pycache__" in p.parts:  # per-quoter loop copies (mmbot.engine.build)
            continue
        if "@njit" in p.read_text():
            assert p.relative_to(jitcache.PACKAGE_DIR).as_posix() in names


def test_configure_uses_a_digest_directory_keeps_the_newest_others_and_drops_older_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tree(tmp_path)
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    others = []
    for i in range(jitcache.KEEP_OTHER + 2):  # oldest first
        d = tmp_path / "__pycache__" / f"numba-{i:016x}"
        d.mkdir(parents=True)
        (d / "f.nbi").write_bytes(b"")
        os.utime(d, ns=(10**18 + i * 10**9, 10**18 + i * 10**9))
        others.append(d)
    keep = tmp_path / "__pycache__" / "a.cpython-311.pyc"
    keep.write_bytes(b"")
    d = jitcache.configure(tmp_path)
    assert d == tmp_path / "__pycache__" / ("numba-" + jitcache.source_digest(tmp_path))
    assert d.is_dir() and os.environ["NUMBA_CACHE_DIR"] == str(d)
    assert [o.exists() for o in others] == [False, False] + [True] * jitcache.KEEP_OTHER
    assert keep.exists()


def test_a_user_numba_cache_dir_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _tree(tmp_path)
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    assert jitcache.configure(tmp_path) is None
    assert os.environ["NUMBA_CACHE_DIR"] == str(tmp_path / "mine")


def _fresh(code: str) -> list[str]:
    """stdout lines of ``code`` in a fresh interpreter without NUMBA_CACHE_DIR."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def test_import_mmbot_leaves_the_numba_cache_alone() -> None:
    out = _fresh(
        "import os, sys, mmbot; print(os.environ.get('NUMBA_CACHE_DIR')); print('numba' in sys.modules)"
    )
    assert out == ["None", "False"]


@pytest.mark.parametrize(
    "entry",
    [
        "import mmbot.cli",
        "import mmbot; mmbot.backtest",
        "import mmbot; mmbot.load_events",
        "import mmbot.api",
        "import mmbot.sweep.remote",
    ],
)
def test_each_entry_point_puts_numba_s_cache_in_the_digest_directory(entry: str) -> None:
    code = f"import numba; {entry}; import mmbot.jitcache as j; print(numba.config.CACHE_DIR); print(j.source_digest())"
    out = _fresh(code)
    assert out[0].endswith("numba-" + out[1]), out


def test_configure_after_compiled_code_was_defined_warns() -> None:
    code = (
        "import warnings; import mmbot.sim; from mmbot import jitcache\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always'); jitcache.configure()\n"
        "print(len(jitcache.compiled_functions_defined()) > 0, [str(x.message).split()[0] for x in w])"
    )
    assert _fresh(code) == ["True", "['mmbot.jitcache.configure()']"]


def test_the_spawned_sweep_workers_set_the_cache_up_first(monkeypatch: pytest.MonkeyPatch) -> None:
    from mmbot.sweep.executors import ProcessExecutor

    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)  # nothing to inherit
    ex = ProcessExecutor(1)
    try:
        seen = ex._pool.submit(os.getenv, "NUMBA_CACHE_DIR").result(timeout=120)
    finally:
        ex.close()
    assert seen is not None and seen.endswith("numba-" + jitcache.source_digest()), seen
