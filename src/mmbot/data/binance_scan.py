"""Compiled scanner for Binance raw-capture blocks (``<local_ns> <json>`` lines).

Parsing ~10^5 small JSON lines through a Python loop costs ~4 us a line; this numba scanner walks
the bytes once, tracks the JSON structure (objects, arrays, strings with escapes, literals) and
picks out only the fields the reader needs: ``e``, ``E``, ``T``, ``U``, ``u``, ``pu``,
``lastUpdateId``, ``m``, ``X``, ``p``, ``q``, ``b``/``a``/``B``/``A`` (strings for bookTicker,
level arrays for depth), ``bids``/``asks``. Keys are matched by a hash of their bytes (the fixed key
set is checked collision-free at import). A line whose structure is not valid JSON (unbalanced
brackets, unterminated string, trailing garbage, bad token) is reported by line number; the caller
turns it into a ``UserError`` naming file and line.

The scan is split by job: ``scan_block`` walks the lines; ``_parse_body`` walks one line's JSON
structure, storing the fields of the keys it knows into the line's field arrays (``I_*`` integers,
``F_*`` decimals) and its depth levels into the level arrays; ``_member`` reads one member's value
(pure: it returns where the value goes); ``_classify`` names the message from its fields;
``_message_levels`` writes a trade's or a book ticker's levels; ``_store`` writes its row of the
message table (``M_*``). Speed: the helpers that run per token (once per member or level) take
no array they write: numba reference-counts an array passed to a helper with branches, and a
first split that stored through such helpers scanned 1.8x slower (CPU time, USD-M capture).
For the same reason ``_member``, its helpers and ``numparse.dec_span`` are inlined into the
loop (``inline="always"``): a call passing the line buffer pays its reference count.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mmbot.data.numparse import POW10, dec_span

MOD = (1 << 55) - 1  # h * 131 + 255 stays below 2^63 (no int64 overflow in numba)


def key_hash(s: str) -> int:
    h = len(s)
    for b in s.encode():
        h = (h * 131 + b) % MOD
    return h


_KEYS = {
    name: key_hash(name)
    for name in (
        "e",
        "E",
        "T",
        "U",
        "u",
        "pu",
        "lastUpdateId",
        "m",
        "X",
        "p",
        "q",
        "b",
        "a",
        "B",
        "A",
        "bids",
        "asks",
        "s",
        "depthUpdate",
        "trade",
        "bookTicker",
        "MARKET",
    )
}
assert len(set(_KEYS.values())) == len(_KEYS)
K_e = _KEYS["e"]
K_E = _KEYS["E"]
K_T = _KEYS["T"]
K_U = _KEYS["U"]
K_u = _KEYS["u"]
K_pu = _KEYS["pu"]
K_LUI = _KEYS["lastUpdateId"]
K_m = _KEYS["m"]
K_X = _KEYS["X"]
K_p = _KEYS["p"]
K_q = _KEYS["q"]
K_b = _KEYS["b"]
K_a = _KEYS["a"]
K_B = _KEYS["B"]
K_A = _KEYS["A"]
K_bids = _KEYS["bids"]
K_asks = _KEYS["asks"]
K_s = _KEYS["s"]
V_DEPTH = _KEYS["depthUpdate"]
V_TRADE = _KEYS["trade"]
V_BOOK = _KEYS["bookTicker"]
V_MARKET = _KEYS["MARKET"]

# message status
ST_OK = 0
ST_SKIP_NONMARKET = 1
ST_SKIP_UNSUPPORTED = 2
ST_SKIP_NONMARKET_TRADE = 3
# errors (returned with the block-relative line index)
ERR_NONE = 0
ERR_LOCAL_TS = 1
ERR_JSON = 2
ERR_FIELDS = 3

MT_DIFF = 0
MT_SNAPSHOT = 1
MT_TRADE = 2
MT_BBO = 3
NO_TS = np.iinfo(np.int64).min

_POW10 = POW10  # the reader passes it to scan_block


# one line's fields (I_*: int64, reset for every line but B_SYM; F_*: float64, NaN for absent)
I_E, I_T, I_U, I_u, I_PU, I_LUI = range(6)  # exchange times (ms) and update ids
I_EVENT, I_MAKER, I_X_MARKET = 6, 7, 8  # hash of ``e`` (-1 absent); ``m`` (-1 absent); ``X``
I_SEEN_LUI, I_SEEN_PU, I_SEEN_B, I_SEEN_A = 9, 10, 11, 12  # 1 once the key was read
B_SYM = 13  # the block's first symbol as (start << 32) | end (-1 none); blocks are < 4 GiB
I_NONE = 14  # where `_member` sends a value nobody reads (a store without a branch)
N_INT = 15
F_P, F_Q, F_BID_PX, F_BID_QTY, F_ASK_PX, F_ASK_QTY = range(6)
F_NONE = 6
N_DEC = 7
T_BAD = -2  # `_member`: an integer field that is not an integer
# the message table's rows (int64)
M_TYPE, M_LOCAL, M_EXCH, M_FIRST, M_LAST, M_PREV, M_NB, M_NA, M_STATUS = range(9)
N_MSG_FIELDS = 9


@njit(cache=True, inline="always")
def _hash(buf, s, e):
    h = e - s
    for k in range(s, e):
        h = (h * 131 + buf[k]) % MOD
    return h


@njit(cache=True)
def _count_lines(buf):
    """An upper bound of the lines in ``buf`` (newlines + 1)."""
    n = 1
    for k in range(len(buf)):
        if buf[k] == 10:
            n += 1
    return n


@njit(cache=True)
def _skip_blank(buf, j, eol):
    while j < eol and (buf[j] == 32 or buf[j] == 9 or buf[j] == 13):
        j += 1
    return j


@njit(cache=True)
def _local_ts(buf, j, eol):
    """The ``<local_ns> `` prefix at ``j``: (value, index of the space, ok)."""
    loc = 0
    nd = 0
    while j < eol and 48 <= buf[j] <= 57:
        loc = loc * 10 + (buf[j] - 48)
        nd += 1
        j += 1
    return loc, j, not (nd == 0 or nd > 19 or j >= eol or buf[j] != 32)


@njit(cache=True)
def _string_end(buf, k, eol):
    """Index of the quote closing the string opened at ``k`` (>= eol when unterminated)."""
    k += 1
    while k < eol and buf[k] != 34:
        if buf[k] == 92:
            k += 1
        k += 1
    return k


@njit(cache=True)
def _number_end(buf, k, eol):
    k += 1
    while k < eol and (
        (48 <= buf[k] <= 57)
        or buf[k] == 46
        or buf[k] == 101
        or buf[k] == 69
        or buf[k] == 43
        or buf[k] == 45
    ):
        k += 1
    return k


@njit(cache=True)
def _literal(buf, k, eol):
    """``true`` / ``false`` / ``null`` at ``k``: (length, 1 / 0 / -1); length 0 when none."""
    if k + 4 <= eol and buf[k] == 116 and buf[k + 1] == 114 and buf[k + 2] == 117:  # noqa: SIM102
        if buf[k + 3] == 101:
            return 4, 1
    if k + 5 <= eol and buf[k] == 102 and buf[k + 1] == 97 and buf[k + 2] == 108:  # noqa: SIM102
        if buf[k + 3] == 115 and buf[k + 4] == 101:
            return 5, 0
    if k + 4 <= eol and buf[k] == 110 and buf[k + 1] == 117 and buf[k + 2] == 108:  # noqa: SIM102
        if buf[k + 3] == 108:
            return 4, -1
    return 0, -1


@njit(cache=True, inline="always")
def _int_span(buf, s, e):
    """An optionally negative run of digits: (value, ok)."""
    v = np.int64(0)
    neg = buf[s] == 45
    for t in range(s + (1 if neg else 0), e):
        d = buf[t]
        if d < 48 or d > 57:
            return v, False
        v = v * 10 + (d - 48)
    return (-v if neg else v), True


# the members read as a decimal (F_*) or an integer (I_*): rows of (key hash, slot)
_DEC_FIELDS = np.array(
    [[K_p, F_P], [K_q, F_Q], [K_b, F_BID_PX], [K_B, F_BID_QTY], [K_a, F_ASK_PX], [K_A, F_ASK_QTY]],
    dtype=np.int64,
)
_INT_FIELDS = np.array(
    [[K_E, I_E], [K_T, I_T], [K_U, I_U], [K_u, I_u], [K_pu, I_PU], [K_LUI, I_LUI]], dtype=np.int64
)


@njit(cache=True, inline="always")
def _field_slot(fields, key):
    """The slot ``fields`` (``_DEC_FIELDS`` or ``_INT_FIELDS``) gives ``key``, or -1."""
    for i in range(fields.shape[0]):
        if fields[i, 0] == key:
            return fields[i, 1]
    return -1


@njit(cache=True, inline="always")
def _member(buf, s0, s1, is_str, key, sym_free, pow10):
    """An object member's value [s0, s1) under ``key`` (a string, else a number): where it goes,
    as (I_* slot, its int, F_* slot, its decimal, I_SEEN_* flag to set); I_NONE / F_NONE where
    nothing goes, T_BAD first when an integer field holds something else."""
    slot = _field_slot(_DEC_FIELDS, key)
    if slot >= 0:
        seen = I_SEEN_B if slot == F_BID_QTY else (I_SEEN_A if slot == F_ASK_QTY else I_NONE)
        return I_NONE, 0, slot, dec_span(buf, s0, s1, pow10), seen
    if is_str:
        if key == K_e:
            return I_EVENT, _hash(buf, s0, s1), F_NONE, np.nan, I_NONE
        if key == K_X:
            return I_X_MARKET, (1 if _hash(buf, s0, s1) == V_MARKET else 0), F_NONE, np.nan, I_NONE
        if key == K_s and sym_free:
            return B_SYM, (s0 << 32) | s1, F_NONE, np.nan, I_NONE
        return I_NONE, 0, F_NONE, np.nan, I_NONE
    slot = _field_slot(_INT_FIELDS, key)
    if slot < 0:
        return I_NONE, 0, F_NONE, np.nan, I_NONE
    v, ok = _int_span(buf, s0, s1)
    if not ok:
        return T_BAD, 0, F_NONE, np.nan, I_NONE
    seen = I_SEEN_PU if slot == I_PU else (I_SEEN_LUI if slot == I_LUI else I_NONE)
    return slot, v, F_NONE, np.nan, seen


@njit(cache=True)
def _array_role(stack, role, sp, key):
    """The role of an array opened at depth ``sp``: 1 bid levels, 2 ask levels, 3 one level."""
    if stack[sp - 1] == 1:
        if key == K_b or key == K_bids:  # noqa: SIM109 (numba scalar compares)
            return 1
        if key == K_a or key == K_asks:  # noqa: SIM109
            return 2
        return 0
    if role[sp - 1] == 1 or role[sp - 1] == 2:
        return 3
    return 0


@njit(cache=True)
def _parse_body(buf, k, eol, pow10, stack, role, iv, fv, lv_f, l_side, n_lv):
    """One line's JSON object [k, eol): fields into iv/fv, levels from n_lv; (ok, n_lv)."""
    sp = 0
    expect_key = False
    cur_key = np.int64(0)
    fld = 0
    lpx = np.nan
    n_obj = 0
    while k < eol:
        c = buf[k]
        if c == 32 or c == 9 or c == 13:
            pass
        elif sp == 0 and n_obj > 0:
            return False, n_lv  # trailing garbage after the top-level object
        elif c == 123:  # {
            if sp >= 31:
                return False, n_lv
            stack[sp] = 1
            role[sp] = 0
            sp += 1
            n_obj += 1
            expect_key = True
        elif c == 125 or c == 58:  # } :
            if sp == 0 or stack[sp - 1] != 1:
                return False, n_lv
            sp -= 1 if c == 125 else 0
            expect_key = False
        elif c == 91:  # [
            if sp == 0 or sp >= 31:
                return False, n_lv
            stack[sp] = 2
            role[sp] = _array_role(stack, role, sp, cur_key)
            fld = 0 if role[sp] == 3 else fld
            sp += 1
        elif c == 93:  # ]
            if sp == 0 or stack[sp - 1] != 2:
                return False, n_lv
            if role[sp - 1] == 3:  # a [price, qty] level ends (its quantity is stored already)
                if fld != 2 or n_lv >= lv_f.shape[1]:
                    return False, n_lv
                lv_f[0, n_lv] = lpx
                l_side[n_lv] = role[sp - 2]  # the levels' array: 1 bids, 2 asks
                n_lv += 1
            sp -= 1
        elif c == 44:  # ,
            if sp == 0:
                return False, n_lv
            expect_key = True if stack[sp - 1] == 1 else expect_key
        elif c == 34 or c == 45 or (48 <= c <= 57):  # a string or a number
            s0 = k + 1 if c == 34 else k
            e = _string_end(buf, k, eol) if c == 34 else _number_end(buf, k, eol)
            in_obj = sp > 0 and stack[sp - 1] == 1
            if sp == 0 or (c == 34 and e >= eol) or (c != 34 and in_obj and expect_key):
                return False, n_lv
            if in_obj and expect_key:
                cur_key = _hash(buf, s0, e)
            elif role[sp - 1] == 3:  # a level's price or quantity (a string, or a JSON number)
                v = dec_span(buf, s0, e, pow10)
                if fld == 1 and n_lv < lv_f.shape[1]:
                    lv_f[1, n_lv] = v
                lpx = v if fld == 0 else lpx
                fld += 1
            elif in_obj:  # a member's value: (int slot, value, decimal slot, value, seen flag)
                si, vi, sf, vf, seen = _member(buf, s0, e, c == 34, cur_key, iv[B_SYM] < 0, pow10)
                if si == T_BAD:
                    return False, n_lv
                iv[si] = vi
                fv[sf] = vf
                iv[seen] = 1
            k = e if c == 34 else e - 1
        else:  # true / false / null
            n_lit, val = _literal(buf, k, eol)
            if n_lit == 0 or sp == 0:
                return False, n_lv
            if val >= 0 and stack[sp - 1] == 1 and cur_key == K_m:
                iv[I_MAKER] = val
            k += n_lit - 1
        k += 1
    return sp == 0 and n_obj > 0, n_lv


@njit(cache=True)
def _reset_line(iv, fv):
    """Every field absent (B_SYM, the block's, stays)."""
    sym = iv[B_SYM]
    iv[:] = 0
    iv[I_E] = NO_TS
    iv[I_T] = NO_TS
    for f in (I_U, I_u, I_PU, I_LUI, I_EVENT, I_MAKER):
        iv[f] = -1
    iv[I_X_MARKET] = 1
    iv[B_SYM] = sym
    fv[:] = np.nan


@njit(cache=True)
def _exch_ms(iv):
    """Exchange time, ms: ``T`` when present, else ``E`` (NO_TS when neither)."""
    return iv[I_T] if iv[I_T] != NO_TS else iv[I_E]


@njit(cache=True)
def _classify(iv):
    """The message a line's fields make: (MT_* or -1, ST_*, first update id, last, ERR_*)."""
    ts = _exch_ms(iv)
    has_e = iv[I_EVENT] >= 0
    ev = iv[I_EVENT]
    if has_e and ev == V_DEPTH:
        if iv[I_U] < 0 or iv[I_u] < 0 or ts == NO_TS:
            return -1, ST_OK, 0, 0, ERR_FIELDS
        return MT_DIFF, ST_OK, iv[I_U], iv[I_u], ERR_NONE
    if has_e and ev == V_TRADE:
        if ts == NO_TS or iv[I_MAKER] < 0:
            return -1, ST_OK, 0, 0, ERR_FIELDS
        if iv[I_X_MARKET] == 0:
            return -1, ST_SKIP_NONMARKET_TRADE, 0, 0, ERR_NONE
        return MT_TRADE, ST_OK, 0, 0, ERR_NONE
    if (has_e and ev == V_BOOK) or (not has_e and iv[I_SEEN_B] == 1 and iv[I_SEEN_A] == 1):
        return MT_BBO, ST_OK, 0, 0, ERR_NONE
    if iv[I_SEEN_LUI] == 1:
        return MT_SNAPSHOT, ST_OK, iv[I_LUI], iv[I_LUI], ERR_NONE
    if has_e:
        return -1, ST_SKIP_UNSUPPORTED, 0, 0, ERR_NONE
    return -1, ST_SKIP_NONMARKET, 0, 0, ERR_NONE


@njit(cache=True)
def _count_sides(l_side, lv0, n_lv):
    """(bid levels, ask levels) among the levels [lv0, n_lv)."""
    nb = 0
    for t in range(lv0, n_lv):
        if l_side[t] == 1:
            nb += 1
    return nb, n_lv - lv0 - nb


@njit(cache=True)
def _put_level(lv_f, l_side, at, px, qty, side):
    lv_f[0, at] = px
    lv_f[1, at] = qty
    l_side[at] = side


@njit(cache=True)
def _message_levels(mt, st, iv, fv, lv_f, l_side, lv0, n_lv):
    """The levels a message keeps (from ``lv0``): a skipped one none, a trade its own, a book
    ticker its bid and ask, a depth message those its arrays gave. (n_lv, nb, na, ERR_*)."""
    if st != ST_OK:
        return lv0, 0, 0, ERR_NONE
    if mt == MT_TRADE:
        if lv0 >= lv_f.shape[1]:
            return lv0, 0, 0, ERR_FIELDS
        seller = iv[I_MAKER] == 1  # buyer is maker: the seller aggressed
        _put_level(lv_f, l_side, lv0, fv[F_P], fv[F_Q], 2 if seller else 1)
        return lv0 + 1, 0 if seller else 1, 1 if seller else 0, ERR_NONE
    if mt == MT_BBO:
        if lv0 + 2 > lv_f.shape[1]:
            return lv0, 0, 0, ERR_FIELDS
        _put_level(lv_f, l_side, lv0, fv[F_BID_PX], fv[F_BID_QTY], 1)
        _put_level(lv_f, l_side, lv0 + 1, fv[F_ASK_PX], fv[F_ASK_QTY], 2)
        return lv0 + 2, 1, 1, ERR_NONE
    nb, na = _count_sides(l_side, lv0, n_lv)
    return n_lv, nb, na, ERR_NONE


@njit(cache=True)
def _store(msg, n, mt, st, loc, ts, first, last, prev, nb, na):
    msg[M_TYPE, n] = mt
    msg[M_STATUS, n] = st
    msg[M_LOCAL, n] = loc
    msg[M_EXCH, n] = ts * 1_000_000 if ts != NO_TS else NO_TS
    msg[M_FIRST, n] = first
    msg[M_LAST, n] = last
    msg[M_PREV, n] = prev
    msg[M_NB, n] = nb
    msg[M_NA, n] = na


@njit(cache=True, nogil=True)
def scan_block(buf, pow10):
    """Scan a block of whole lines. Returns message arrays, level arrays and (err_code, err_line)."""
    n = len(buf)
    msg = np.empty((N_MSG_FIELDS, _count_lines(buf)), np.int64)
    cap = n // 8 + 16
    lv_f = np.empty((2, cap), np.float64)  # level price, quantity
    l_side = np.empty(cap, np.int8)
    stack = np.zeros(32, np.int8)  # 1 = object, 2 = array
    role = np.zeros(32, np.int8)  # arrays: 1 = bid levels, 2 = ask levels, 3 = one level
    iv = np.empty(N_INT, np.int64)
    iv[B_SYM] = -1
    fv = np.empty(N_DEC, np.float64)
    saw_pu = False
    saw_diff = False
    n_msg = 0
    n_lv = 0
    line_idx = 0
    i = 0
    err = ERR_NONE
    while i < n:
        eol = i  # one line [i, eol)
        while eol < n and buf[eol] != 10:
            eol += 1
        j = _skip_blank(buf, i, eol)
        if j < eol:
            loc, j, ok = _local_ts(buf, j, eol)
            if not ok:
                err = ERR_LOCAL_TS
                break
            _reset_line(iv, fv)
            lv0 = n_lv
            ok, n_lv = _parse_body(buf, j, eol, pow10, stack, role, iv, fv, lv_f, l_side, n_lv)
            if not ok:
                err = ERR_JSON
                break
            saw_pu = saw_pu or iv[I_SEEN_PU] == 1
            mt, st, first, last, err = _classify(iv)
            if err == ERR_NONE:
                n_lv, nb, na, err = _message_levels(mt, st, iv, fv, lv_f, l_side, lv0, n_lv)
            if err != ERR_NONE:
                break
            saw_diff = saw_diff or mt == MT_DIFF
            _store(msg, n_msg, mt, st, loc, _exch_ms(iv), first, last, iv[I_PU], nb, na)
            n_msg += 1
        i = eol + 1
        line_idx += 1
    market = 0  # 0 unknown, 1 usdm (diffs carry pu), 2 spot
    if saw_diff:
        market = 1 if saw_pu else 2
    sym = iv[B_SYM]
    return (
        msg[M_TYPE, :n_msg],
        msg[M_LOCAL, :n_msg],
        msg[M_EXCH, :n_msg],
        msg[M_FIRST, :n_msg],
        msg[M_LAST, :n_msg],
        msg[M_PREV, :n_msg],
        msg[M_NB, :n_msg],
        msg[M_NA, :n_msg],
        msg[M_STATUS, :n_msg],
        lv_f[0, :n_lv],
        lv_f[1, :n_lv],
        l_side[:n_lv],
        err,
        line_idx,
        sym >> 32 if sym >= 0 else sym,
        sym & 0xFFFFFFFF if sym >= 0 else sym,
        market,
    )
