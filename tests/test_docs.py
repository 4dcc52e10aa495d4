"""Docs in the repo: the CLI reference is current, links stay inside the repo and resolve, the
example script runs and prints fills with their edge components."""

from __future__ import annotations

import re
import subprocess

from conftest import REPO, TESTS_DATA

DOCS = REPO / "docs"
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_cli_reference_is_generated_from_the_current_commands() -> None:
    from mmbot.commands.clidoc import render

    assert (DOCS / "cli.md").read_text() == render(), (
        "docs/cli.md is stale: run `.venv/bin/python -m mmbot.commands.clidoc --write`"
    )


def test_cli_reference_lists_every_command() -> None:
    text = (DOCS / "cli.md").read_text()
    for cmd in ("backtest", "soak", "gate", "report", "data convert", "cache info", "paper"):
        assert f"## `mmbot {cmd}`" in text


def test_readme_and_docs_links_stay_inside_the_repo_and_resolve() -> None:
    pages = [REPO / "README.md", *DOCS.rglob("*.md")]
    for page in pages:
        for target in LINK.findall(page.read_text()):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path = (page.parent / target).resolve()
            assert path.is_relative_to(REPO), f"{page.name}: link {target} leaves the repo"
            assert path.exists(), f"{page.name}: link {target} does not resolve"
    assert "../shared" not in (REPO / "README.md").read_text()


def test_data_package_docstring_cites_existing_docs() -> None:
    import mmbot.data

    for ref in re.findall(r"docs/[\w./-]+\.md", mmbot.data.__doc__):
        assert (REPO / ref).exists(), ref


def test_example_script_prints_fills_with_edge_components() -> None:
    script = DOCS / "examples" / "fills_edges.py"
    assert len(script.read_text().splitlines()) <= 15
    py = str(REPO / ".venv" / "bin" / "python")
    sample = str(TESTS_DATA / "binance_usdm_btcusdt_sample.gz")
    p = subprocess.run([py, str(script), sample], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    for col in ("gross", "slippage", "fees", "inventory", "net", "markout_1s_bps"):
        assert col in p.stdout
    assert re.search(r"net -?\d+\.\d{3} bps over [1-9]\d* fills, gate (PASS|WARN|FAIL)", p.stdout)
