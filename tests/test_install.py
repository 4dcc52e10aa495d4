"""The install: core dependencies are exactly what the core imports; live-only packages sit in the
[live] extra, the sweep's in [sweep]; the core commands (and the demo) run with every optional
package's import blocked; a command whose extra is missing names it."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib

from conftest import REPO, TESTS_DATA

SRC = REPO / "src" / "mmbot"
# distribution name -> import name, where they differ
IMPORT_NAME = {"prometheus-client": "prometheus_client", "pyyaml": "yaml"}
# extras whose packages core code imports lazily, behind a clear error when absent
LAZY_EXTRAS = ("ray", "pandas", "sweep")
LIVE_ONLY_FILES = ("live/", "commands/live.py")


def _project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _names(reqs: list[str]) -> set[str]:
    out = set()
    for r in reqs:
        dist = re.split(r"[<>=!~\[ ;]", r, maxsplit=1)[0]
        if dist != "mmbot":
            out.add(IMPORT_NAME.get(dist, dist))
    return out


def _third_party_imports(live: bool) -> set[str]:
    found: set[str] = set()
    for p in SRC.rglob("*.py"):
        rel = p.relative_to(SRC).as_posix()
        if rel.startswith(LIVE_ONLY_FILES) != live:
            continue
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Import):
                found.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m != "mmbot"}


def test_core_dependencies_are_exactly_what_the_core_imports() -> None:
    extras = _project()["optional-dependencies"]
    lazy = set().union(*(_names(extras[e]) for e in LAZY_EXTRAS))
    assert _third_party_imports(live=False) - lazy == _names(_project()["dependencies"])


def test_live_extra_holds_what_only_live_code_imports() -> None:
    extras = _project()["optional-dependencies"]
    core = _names(_project()["dependencies"])
    assert _third_party_imports(live=True) - core == _names(extras["live"])
    assert "mmbot[live,sweep]" in extras["dev"]


def test_every_optional_module_maps_to_the_extra_that_lists_it() -> None:
    from mmbot.extras import OPTIONAL_MODULES

    extras = _project()["optional-dependencies"]
    for module, extra in OPTIONAL_MODULES.items():
        assert module in _names(extras[extra]), (module, extra)
    assert not set(OPTIONAL_MODULES) & _names(_project()["dependencies"])


BLOCKER = """
import sys
BLOCKED = {"pyarrow", "pandas", "aiohttp", "prometheus_client", "hftbacktest", "websockets",
           "optuna", "sqlalchemy", "alembic", "yaml", "ray"}
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
        return None
sys.meta_path.insert(0, _Block())
from mmbot.cli import app
sys.argv = ["mmbot", *sys.argv[1:]]
app()
"""


def _mmbot_blocked(*args: str, cwd) -> subprocess.CompletedProcess:
    py = str(REPO / ".venv" / "bin" / "python")
    cmd = [py, "-c", BLOCKER, *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)


def test_core_commands_run_with_optional_packages_blocked(tmp_path) -> None:
    sample = str(TESTS_DATA / "binance_usdm_btcusdt_sample.gz")
    p = _mmbot_blocked("backtest", "--data", sample, "--out", "bt", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "bt" / "REPORT.html").exists()
    p = _mmbot_blocked("data", "convert", sample, "--out", "ev.npz", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    p = _mmbot_blocked("report", "--run", "bt", cwd=tmp_path)
    assert p.returncode == 0, p.stderr


def test_live_command_without_the_live_extra_says_which_extra(tmp_path) -> None:
    p = _mmbot_blocked("emulator", "--help", cwd=tmp_path)
    assert p.returncode == 0  # help needs nothing optional
    p = _mmbot_blocked(
        "record", "--symbol", "BTCUSDT", "--out", "x.jsonl", "--duration-s", "1", cwd=tmp_path
    )
    assert p.returncode == 2, p.stdout + p.stderr
    assert "pip install 'mmbot[live]'" in p.stderr and "Traceback" not in p.stderr


def test_sweep_without_the_sweep_extra_says_which_extra(tmp_path) -> None:
    p = _mmbot_blocked("sweep", "--out", "sw", "--market", "synthetic", cwd=tmp_path)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "pip install 'mmbot[sweep]'" in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "sw").exists()  # refused before any work


def test_demo_runs_with_optional_packages_blocked(tmp_path) -> None:
    p = _mmbot_blocked("demo", "--hours", "0.02", "--iterations", "2", cwd=tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    assert (tmp_path / "artifacts" / "reports" / "REPORT.html").exists()
