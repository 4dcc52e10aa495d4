"""`inputs.read_text`, the one read-a-file-or-UserError of the profile, overrides, sweep-space and
EDGE_REPORT loaders: a missing, unreadable or non-UTF-8 file is one line naming the input (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmbot.config import load_overrides
from mmbot.errors import UserError
from mmbot.inputs import read_text
from mmbot.sweep.space import load_space


def test_reads_utf8_text(tmp_path: Path) -> None:
    p = tmp_path / "a.json"
    p.write_text('{"x": "é"}', encoding="utf-8")
    assert read_text("--thing a.json", p) == '{"x": "é"}'


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda p: None, "--thing {p}: file not found"),
        (lambda p: p.mkdir(), "--thing {p}: unreadable: "),
        (lambda p: p.write_bytes(b"\xff\xfe\xfa"), "--thing {p}: unreadable: "),
    ],
    ids=["missing", "directory", "not-utf8"],
)
def test_bad_file_is_one_user_error_naming_it(tmp_path: Path, make, expected: str) -> None:
    p = tmp_path / "in.json"
    make(p)
    with pytest.raises(UserError) as exc:
        read_text(f"--thing {p}", p)
    msg = str(exc.value)
    assert msg.startswith(expected.format(p=p)) and "\n" not in msg


def test_the_loaders_name_their_input(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    with pytest.raises(UserError, match=f"^--space {missing}: file not found$"):
        load_space(missing)
    with pytest.raises(UserError, match=f"^overrides file {missing}: file not found$"):
        load_overrides(missing, env={})


@pytest.mark.parametrize(
    "content, expected",
    [
        (None, "EDGE_REPORT {p}: file not found"),
        ('{"a": ', "EDGE_REPORT {p}: malformed JSON: "),
        ("[1, 2]", "EDGE_REPORT {p}: not a JSON object"),
    ],
    ids=["missing", "malformed", "not-an-object"],
)
def test_edge_report_load_json_names_its_input(tmp_path: Path, content, expected: str) -> None:
    from mmbot.audit.edge_report import load_json

    p = tmp_path / "EDGE_REPORT.json"
    if content is not None:
        p.write_text(content)
    with pytest.raises(UserError) as exc:
        load_json(p, "EDGE_REPORT")
    msg = str(exc.value)
    assert msg.startswith(expected.format(p=p)) and "\n" not in msg


def test_edge_report_load_json_reads_an_object(tmp_path: Path) -> None:
    from mmbot.audit.edge_report import load_json

    p = tmp_path / "g.json"
    p.write_text('{"net_bps": 1.5, "n": [1, 2]}')
    assert load_json(p, "gate thresholds") == {"net_bps": 1.5, "n": [1, 2]}
