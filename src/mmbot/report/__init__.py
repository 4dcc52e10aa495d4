"""Markdown and self-contained HTML reports of a run (or a soak's runs), and ``mmbot report``.

Public API: ``write_reports(out_dir, edge_report, results, gate=None, extra_md="", *, extra_html="")
-> (md, html)`` (``extra_html``: a fragment placed after the gate table, e.g. the soak's decision)
and ``report_command(run_dir)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mmbot.records import RunResult

MD_NAME = "SOAK_RESULTS.md"
HTML_NAME = "REPORT.html"


def write_reports(
    out_dir: Path,
    edge_report: dict,
    results: Sequence[RunResult],
    gate: dict | None = None,
    extra_md: str = "",
    *,
    extra_html: str = "",
    md_name: str = MD_NAME,
    html_name: str = HTML_NAME,
    max_points: int = 1000,
    iterations: Sequence[dict] | None = None,
) -> tuple[Path, Path]:
    """Write ``out_dir/SOAK_RESULTS.md`` and ``out_dir/REPORT.html``; returns their paths.
    ``results`` are the runs the report was built from (their records feed the plots)."""
    from mmbot.audit.decompose import decompose
    from mmbot.report.html import render_html
    from mmbot.report.markdown import render_markdown

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md_path = out_dir / md_name
    html_path = out_dir / html_name
    edges = [decompose(r, f"run {i}") for i, r in enumerate(results)]
    _write_text(md_path, render_markdown(edge_report, gate, extra_md))
    _write_text(
        html_path,
        render_html(edge_report, results, edges, gate, max_points, extra_html, iterations),
    )
    return md_path, html_path


def _write_text(path: Path, text: str) -> None:
    from mmbot.inputs import output_file

    output_file("report", path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def report_command(run_dir: Path) -> int:
    """``mmbot report --run DIR``: read the run's records, build EDGE_REPORT.json and KPI_GATE.json
    in DIR if they are missing, write the Markdown and HTML reports there, print the paths."""
    from mmbot.audit.edge_report import build_edge_report, dump_json, load_json, make_runtime
    from mmbot.audit.records_io import read_run
    from mmbot.gate import evaluate, summary_line

    run_dir = Path(run_dir)
    results = read_run(run_dir)
    er_path = run_dir / "EDGE_REPORT.json"
    if er_path.exists():
        edge_report = load_json(er_path, "EDGE_REPORT")
    else:
        meta = results[0].meta if results else {}
        rt = meta.get("runtime")
        runtime = (
            rt
            if isinstance(rt, dict)
            else make_runtime(
                profile=meta.get("profile"),
                overrides=meta.get("knobs") if isinstance(meta.get("knobs"), dict) else None,
                seed=meta.get("seed"),
                data_inputs=[str(run_dir)],
                built_by="mmbot report",
            )
        )
        edge_report = build_edge_report(results, runtime)
        dump_json(edge_report, er_path)
        print(f"wrote {er_path}")
    gate_path = run_dir / "KPI_GATE.json"
    if gate_path.exists():
        gate = load_json(gate_path, "KPI_GATE")
    else:
        gate = evaluate(edge_report)
        dump_json(gate, gate_path)
        print(f"wrote {gate_path}")
    # named for what produced the records: a backtest directory holds its summary.json
    md_name = "BACKTEST_RESULTS.md" if (run_dir / "summary.json").exists() else MD_NAME
    md, html = write_reports(run_dir, edge_report, results, gate, md_name=md_name)
    print(summary_line(gate) if "failed_hard" in gate else f"KPI_GATE={gate.get('verdict')}")
    print(f"wrote {md}")
    print(f"wrote {html} ({html.stat().st_size / 1e6:.2f} MB)")
    return 0


__all__ = ["HTML_NAME", "MD_NAME", "report_command", "write_reports"]
