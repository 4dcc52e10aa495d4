"""Markdown and HTML tables of a fidelity result (the ``FIDELITY.json`` dict).

Owns ``to_markdown`` and ``to_html``: the same three tables (statistics, autocorrelations, the
strategy panel) with each row marked ok / OUT against the bands the result carries.
"""

from __future__ import annotations

import html

import numpy as np


def _f(x: float) -> str:
    return "nan" if x is None or not np.isfinite(x) else f"{x:.4g}"


def _rows(res: dict) -> tuple[list[list[str]], list[list[str]], list[list[str]]]:
    chk = res["checks"]
    stats = [
        [k, _f(v["real"]), _f(v["synthetic"]), _f(v["ratio"]), *_noise(v)]
        + [_mark(k, chk["stats_outside_band"])]
        for k, v in res["stats"].items()
    ]
    ac = [
        [k, _f(v["real"]), _f(v["synthetic"]), _f(v["diff"]), *_noise(v)]
        + [_mark(k, chk["autocorr_outside_band"])]
        for k, v in res["autocorr"].items()
    ]
    rk = [
        [c["name"], _f(c["real_net_bps"]), _f(c["synthetic_net_bps"])]
        for c in res["ranking"]["configs"]
    ]
    return stats, ac, rk


def _noise(v: dict) -> list[str]:
    """The capture-length sampling deviation and z of a row (results before them: nan)."""
    return [_f(v.get("capture_length_sd", float("nan"))), _f(v.get("z", float("nan")))]


def _mark(name: str, outside: list[str]) -> str:
    return "OUT" if name in outside else "ok"


# the ranking against the lowest capture-like Spearman (compare._within_capture_like)
_NOISE_WORD = {True: "yes", False: "no", None: "not measured"}


def _headline(res: dict) -> list[str]:
    m, chk, rk = res["meta"], res["checks"], res["ranking"]
    return [
        f"calibration {m['calibration']} ({m['variant']}, tick {m['synthetic_tick_px']:g}; "
        f"capture tick {m['capture_tick_px']:g}), {m['hours']:g} h x {len(m['seeds'])} seeds",
        f"Spearman {_f(rk['spearman'])} (>= {chk['min_spearman']}: "
        f"{'ok' if chk['spearman_ok'] else 'OUT'}; within the capture's noise: "
        f"{_NOISE_WORD[chk.get('spearman_within_noise')]}), sign agreement {_f(rk['sign_agreement'])} "
        f"(>= {chk['min_sign_agreement']}: {'ok' if chk['sign_agreement_ok'] else 'OUT'})",
        _ceiling_line(rk),
        f"ratio band {chk['ratio_band']}, autocorr |diff| <= {chk['autocorr_max_diff']}; "
        f"all within: {chk['all_ok']}",
        _noise_line(chk),
    ]


def _noise_line(chk: dict) -> str:
    if "noise_z" not in chk:
        return "sampling noise: not measured"
    beyond = chk["stats_outside_band_beyond_noise"] + chk["autocorr_outside_band_beyond_noise"]
    return (
        f"capture-length sd: each statistic's standard deviation over synthetic markets as long "
        f"as the capture; z = (synthetic - real) / sd. Outside the bands and |z| > "
        f"{chk['noise_z']:g}: {', '.join(beyond) or 'none'}"
    )


def _ceiling_line(rk: dict) -> str:
    nc = rk.get("noise_ceiling") or {}
    if not nc:
        return "noise ceiling: not measured (needs >= 2 capture-length markets)"
    pairs = ", ".join(_f(x) for x in nc["seed_spearman_pairs"])
    like = ", ".join(_f(x) for x in nc.get("capture_like_spearman", []))
    return (
        f"noise ceiling: Spearman between synthetic markets of the capture's length "
        f"({nc['duration_s']:.0f} s) {_f(nc['seed_spearman_mean'])} (pairs {pairs}); each of them "
        f"against the synthetic mean, as the capture is compared "
        f"{_f(nc.get('capture_like_spearman_mean', float('nan')))} ({like})"
    )


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


STAT_HEAD = ["statistic", "real", "synthetic", "ratio", "capture-length sd", "z", ""]
AC_HEAD = ["autocorrelation", "real", "synthetic", "diff", "capture-length sd", "z", ""]
RANK_HEAD = ["configuration", "real net bps", "synthetic net bps"]


def to_markdown(res: dict, title: str) -> str:
    stats, ac, rk = _rows(res)
    note = res["meta"].get("market_note") or ""
    parts = [f"# Fidelity: {title}", ""] + [f"- {h}" for h in _headline(res)]
    if note:
        parts += [f"- market: {note}"]
    parts += ["", _md_table(STAT_HEAD, stats), "", _md_table(AC_HEAD, ac), ""]
    parts += [_md_table(RANK_HEAD, rk), ""]
    return "\n".join(parts)


def _html_table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join(
        "<tr"
        + (" class='out'" if r[-1] == "OUT" else "")
        + ">"
        + "".join(f"<td>{html.escape(c)}</td>" for c in r)
        + "</tr>"
        for r in rows
    )
    return f"<table><tr>{th}</tr>{body}</table>"


def to_html(res: dict, title: str) -> str:
    stats, ac, rk = _rows(res)
    head = "".join(f"<li>{html.escape(h)}</li>" for h in _headline(res))
    note = res["meta"].get("market_note") or ""
    if note:
        head += f"<li>market: {html.escape(note)}</li>"
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>fidelity {html.escape(title)}</title><style>"
        "table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 8px;text-align:right}"
        "tr.out td{background:#fdd}</style></head><body>"
        f"<h1>Fidelity: {html.escape(title)}</h1><ul>{head}</ul>"
        f"<h2>Statistics</h2>{_html_table(STAT_HEAD, stats)}"
        f"<h2>Autocorrelations</h2>{_html_table(AC_HEAD, ac)}"
        f"<h2>Strategy panel</h2>{_html_table(RANK_HEAD, rk)}</body></html>\n"
    )
