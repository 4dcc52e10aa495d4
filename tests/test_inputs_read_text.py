"""`inputs.read_text`, the one read-a-file-or-UserError of the profile, overrides and sweep-space
loaders: a missing, unreadable or non-UTF-8 file is one line naming the input (exit 2)."""

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
