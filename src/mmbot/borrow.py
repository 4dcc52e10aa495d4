"""Borrowed (non-owning) array views for compiled per-event loops.

numba reference-counts an array each time it is handed to a function: an atomic increment and
decrement of its memory record per call, which in the venue's merge loop (a book update per market
row, on both books) cost about a third of the loop's time, and in the synthetic market's event loop
(its per-event functions inlined, each taking the market's arrays) more than half. A view whose
memory record is null skips that work (numba's incref / decref return at once on null). Only for
arrays that outlive the view: the venue's books, which its state holds for the whole run; the
market's arrays, which the generator's caller holds for the whole call.
"""

from __future__ import annotations

from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

_VIEW_FIELDS = ("parent", "nitems", "itemsize", "data", "shape", "strides")


@intrinsic
def borrowed(typingctx, arr):
    """The same array without ownership (no reference counting); the caller keeps ``arr`` alive."""
    if not isinstance(arr, types.Array):
        return None

    def codegen(context, builder, signature, args):
        src = context.make_array(arr)(context, builder, value=args[0])
        view = context.make_array(arr)(context, builder)
        for name in _VIEW_FIELDS:
            setattr(view, name, getattr(src, name))
        view.meminfo = cgutils.get_null_value(view.meminfo.type)
        return view._getvalue()

    return arr(arr), codegen
