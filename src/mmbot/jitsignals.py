"""Interrupts and compiled code: where a Python signal handler must not raise.

A signal that arrives while a numba-compiled function runs is handled at the first Python code
that runs after it, which is numba's own boxing of the function's array results (it unpickles
their dtypes in ``numba.core.serialize``). An exception raised there leaves the result half-built:
a SystemError, or a NULL in a returned tuple, which crashes the interpreter when it is unpacked.
``in_result_boxing(frame)`` says whether a handler was called there; the CLI's handler then raises
the interrupt again a moment later (``mmbot.cli``).
"""

from __future__ import annotations

from types import FrameType

# the Python code numba runs while it boxes a compiled function's results
_BOXING_FILES = ("numba/core/serialize.py",)


def in_result_boxing(frame: FrameType | None) -> bool:
    """Whether ``frame`` (a signal handler's) is numba boxing a compiled function's results."""
    return frame is not None and frame.f_code.co_filename.replace("\\", "/").endswith(_BOXING_FILES)
