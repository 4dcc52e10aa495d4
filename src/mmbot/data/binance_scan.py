"""Compiled scanner for Binance raw-capture blocks (``<local_ns> <json>`` lines).

Parsing ~10^5 small JSON lines through a Python loop costs ~4 us a line; this numba scanner walks
the bytes once, tracks the JSON structure (objects, arrays, strings with escapes, literals) and
picks out only the fields the reader needs: ``e``, ``E``, ``T``, ``U``, ``u``, ``pu``,
``lastUpdateId``, ``m``, ``X``, ``p``, ``q``, ``b``/``a``/``B``/``A`` (strings for bookTicker,
level arrays for depth), ``bids``/``asks``. Keys are matched by a hash of their bytes (the fixed key
set is checked collision-free at import). A line whose structure is not valid JSON (unbalanced
brackets, unterminated string, trailing garbage, bad token) is reported by line number; the caller
turns it into a ``UserError`` naming file and line.
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


@njit(cache=True, inline="always")
def _hash(buf, s, e):
    h = e - s
    for k in range(s, e):
        h = (h * 131 + buf[k]) % MOD
    return h


@njit(cache=True, nogil=True)
def scan_block(buf, pow10):
    """Scan a block of whole lines. Returns message arrays, level arrays and (err_code, err_line)."""
    n = len(buf)
    n_lines_max = 1
    for k in range(n):
        if buf[k] == 10:
            n_lines_max += 1
    m_type = np.empty(n_lines_max, np.int64)
    m_local = np.empty(n_lines_max, np.int64)
    m_exch = np.empty(n_lines_max, np.int64)
    m_first = np.empty(n_lines_max, np.int64)
    m_last = np.empty(n_lines_max, np.int64)
    m_prev = np.empty(n_lines_max, np.int64)
    m_nb = np.empty(n_lines_max, np.int64)
    m_na = np.empty(n_lines_max, np.int64)
    m_status = np.empty(n_lines_max, np.int64)
    cap = n // 8 + 16
    l_px = np.empty(cap, np.float64)
    l_qty = np.empty(cap, np.float64)
    l_side = np.empty(cap, np.int8)
    n_msg = 0
    n_lv = 0
    sym_s = -1
    sym_e = -1
    saw_pu = False
    saw_diff = False
    stack = np.zeros(32, np.int8)  # 1 = object, 2 = array
    role = np.zeros(32, np.int8)  # arrays: 1 = bid levels, 2 = ask levels, 3 = one level
    line_idx = 0
    i = 0
    err = ERR_NONE
    while i < n:
        # ---- one line [i, eol) ----
        eol = i
        while eol < n and buf[eol] != 10:
            eol += 1
        j = i
        while j < eol and (buf[j] == 32 or buf[j] == 9 or buf[j] == 13):
            j += 1
        if j == eol:  # blank line
            i = eol + 1
            line_idx += 1
            continue
        loc = 0
        nd = 0
        while j < eol and 48 <= buf[j] <= 57:
            loc = loc * 10 + (buf[j] - 48)
            nd += 1
            j += 1
        if nd == 0 or nd > 19 or j >= eol or buf[j] != 32:
            err = ERR_LOCAL_TS
            break
        # ---- JSON body ----
        e_val = np.int64(0)
        has_e = False
        E = NO_TS
        T = NO_TS
        U = np.int64(-1)
        u = np.int64(-1)
        pu = np.int64(-1)
        lui = np.int64(-1)
        has_lui = False
        m_flag = -1
        x_market = True
        bb = np.nan
        bq = np.nan
        ap = np.nan
        aq = np.nan
        has_B = False
        has_A = False
        p = np.nan
        q = np.nan
        lv0 = n_lv
        nb = 0
        na = 0
        sp = 0
        expect_key = False
        cur_key = np.int64(0)
        fld = 0
        lpx = np.nan
        ok = True
        n_obj = 0
        k = j
        while k < eol:
            c = buf[k]
            if c == 32 or c == 9 or c == 13:
                k += 1
                continue
            if sp == 0 and n_obj > 0:
                ok = False  # trailing garbage after the top-level object
                break
            if c == 123:  # {
                if sp >= 31:
                    ok = False
                    break
                stack[sp] = 1
                role[sp] = 0
                sp += 1
                n_obj += 1
                expect_key = True
                k += 1
            elif c == 125:  # }
                if sp == 0 or stack[sp - 1] != 1:
                    ok = False
                    break
                sp -= 1
                expect_key = False
                k += 1
            elif c == 91:  # [
                if sp == 0 or sp >= 31:
                    ok = False
                    break
                r = 0
                if stack[sp - 1] == 1:
                    if cur_key == K_b or cur_key == K_bids:  # noqa: SIM109 (numba scalar compares)
                        r = 1
                    elif cur_key == K_a or cur_key == K_asks:  # noqa: SIM109
                        r = 2
                elif role[sp - 1] == 1 or role[sp - 1] == 2:
                    r = 3
                    fld = 0
                stack[sp] = 2
                role[sp] = r
                sp += 1
                k += 1
            elif c == 93:  # ]
                if sp == 0 or stack[sp - 1] != 2:
                    ok = False
                    break
                if role[sp - 1] == 3:
                    if fld != 2:
                        ok = False
                        break
                    if n_lv >= cap:
                        ok = False
                        break
                    l_px[n_lv] = lpx  # l_qty[n_lv] was set when the second field was read
                    if role[sp - 2] == 1:
                        l_side[n_lv] = 1
                        nb += 1
                    else:
                        l_side[n_lv] = 2
                        na += 1
                    n_lv += 1
                sp -= 1
                k += 1
            elif c == 44:  # ,
                if sp == 0:
                    ok = False
                    break
                if stack[sp - 1] == 1:
                    expect_key = True
                k += 1
            elif c == 58:  # :
                if sp == 0 or stack[sp - 1] != 1:
                    ok = False
                    break
                expect_key = False
                k += 1
            elif c == 34:  # "
                s0 = k + 1
                k += 1
                while k < eol and buf[k] != 34:
                    if buf[k] == 92:
                        k += 1
                    k += 1
                if k >= eol:
                    ok = False
                    break
                s1 = k
                k += 1
                if sp == 0:
                    ok = False
                    break
                if stack[sp - 1] == 1:
                    if expect_key:
                        cur_key = _hash(buf, s0, s1)
                    elif cur_key == K_e:
                        e_val = _hash(buf, s0, s1)
                        has_e = True
                    elif cur_key == K_X:
                        x_market = _hash(buf, s0, s1) == V_MARKET
                    elif cur_key == K_p:
                        p = dec_span(buf, s0, s1, pow10)
                    elif cur_key == K_q:
                        q = dec_span(buf, s0, s1, pow10)
                    elif cur_key == K_b:
                        bb = dec_span(buf, s0, s1, pow10)
                    elif cur_key == K_B:
                        bq = dec_span(buf, s0, s1, pow10)
                        has_B = True
                    elif cur_key == K_a:
                        ap = dec_span(buf, s0, s1, pow10)
                    elif cur_key == K_A:
                        aq = dec_span(buf, s0, s1, pow10)
                        has_A = True
                    elif cur_key == K_s and sym_s < 0:
                        sym_s = s0
                        sym_e = s1
                elif role[sp - 1] == 3:
                    v = dec_span(buf, s0, s1, pow10)
                    if fld == 0:
                        lpx = v
                    elif fld == 1 and n_lv < cap:
                        l_qty[n_lv] = v
                    fld += 1
            elif c == 45 or (48 <= c <= 57):  # number
                s0 = k
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
                if sp == 0 or (stack[sp - 1] == 1 and expect_key):
                    ok = False
                    break
                if role[sp - 1] == 3:  # a level given as JSON numbers instead of strings
                    v = dec_span(buf, s0, k, pow10)
                    if fld == 0:
                        lpx = v
                    elif fld == 1 and n_lv < cap:
                        l_qty[n_lv] = v
                    fld += 1
                elif stack[sp - 1] == 1 and (
                    cur_key == K_p  # noqa: SIM109
                    or cur_key == K_q
                    or cur_key == K_B
                    or cur_key == K_A
                    or cur_key == K_b
                    or cur_key == K_a
                ):
                    v = dec_span(buf, s0, k, pow10)
                    if cur_key == K_p:
                        p = v
                    elif cur_key == K_q:
                        q = v
                    elif cur_key == K_b:
                        bb = v
                    elif cur_key == K_B:
                        bq = v
                        has_B = True
                    elif cur_key == K_a:
                        ap = v
                    else:
                        aq = v
                        has_A = True
                if stack[sp - 1] == 1:  # noqa: SIM102
                    if (
                        cur_key == K_E  # noqa: SIM109
                        or cur_key == K_T
                        or cur_key == K_U
                        or cur_key == K_u
                        or cur_key == K_pu
                        or cur_key == K_LUI
                    ):
                        v = np.int64(0)
                        neg = buf[s0] == 45
                        for t in range(s0 + (1 if neg else 0), k):
                            d = buf[t]
                            if d < 48 or d > 57:
                                ok = False
                                break
                            v = v * 10 + (d - 48)
                        if not ok:
                            break
                        if neg:
                            v = -v
                        if cur_key == K_E:
                            E = v
                        elif cur_key == K_T:
                            T = v
                        elif cur_key == K_U:
                            U = v
                        elif cur_key == K_u:
                            u = v
                        elif cur_key == K_pu:
                            pu = v
                            saw_pu = True
                        else:
                            lui = v
                            has_lui = True
            elif c == 116 or c == 102 or c == 110:  # true / false / null
                if (
                    k + 4 <= eol
                    and buf[k] == 116
                    and buf[k + 1] == 114
                    and buf[k + 2] == 117
                    and buf[k + 3] == 101
                ):
                    if sp > 0 and stack[sp - 1] == 1 and cur_key == K_m:
                        m_flag = 1
                    k += 4
                elif (
                    k + 5 <= eol
                    and buf[k] == 102
                    and buf[k + 1] == 97
                    and buf[k + 2] == 108
                    and buf[k + 3] == 115
                    and buf[k + 4] == 101
                ):
                    if sp > 0 and stack[sp - 1] == 1 and cur_key == K_m:
                        m_flag = 0
                    k += 5
                elif (
                    k + 4 <= eol
                    and buf[k] == 110
                    and buf[k + 1] == 117
                    and buf[k + 2] == 108
                    and buf[k + 3] == 108
                ):
                    k += 4
                else:
                    ok = False
                    break
                if sp == 0:
                    ok = False
                    break
            else:
                ok = False
                break
        if not ok or sp != 0 or n_obj == 0:
            err = ERR_JSON
            break
        # ---- classify ----
        ts = T if T != NO_TS else E
        st = ST_OK
        mt = -1
        if has_e and e_val == V_DEPTH:
            if U < 0 or u < 0 or ts == NO_TS:
                err = ERR_FIELDS
                break
            mt = MT_DIFF
            saw_diff = True
            n_msg_first = U
            n_msg_last = u
        elif has_e and e_val == V_TRADE:
            if ts == NO_TS or m_flag < 0:
                err = ERR_FIELDS
                break
            if not x_market:
                st = ST_SKIP_NONMARKET_TRADE
            else:
                mt = MT_TRADE
                n_lv = lv0
                if n_lv >= cap:
                    err = ERR_FIELDS
                    break
                l_px[n_lv] = p
                l_qty[n_lv] = q
                if m_flag == 1:  # buyer is maker: the seller aggressed
                    l_side[n_lv] = 2
                    nb = 0
                    na = 1
                else:
                    l_side[n_lv] = 1
                    nb = 1
                    na = 0
                n_lv += 1
            n_msg_first = 0
            n_msg_last = 0
        elif (has_e and e_val == V_BOOK) or ((not has_e) and has_B and has_A):
            mt = MT_BBO
            n_lv = lv0
            if n_lv + 2 > cap:
                err = ERR_FIELDS
                break
            l_px[n_lv] = bb
            l_qty[n_lv] = bq
            l_side[n_lv] = 1
            l_px[n_lv + 1] = ap
            l_qty[n_lv + 1] = aq
            l_side[n_lv + 1] = 2
            n_lv += 2
            nb = 1
            na = 1
            n_msg_first = 0
            n_msg_last = 0
        elif has_lui:
            mt = MT_SNAPSHOT
            n_msg_first = lui
            n_msg_last = lui
        elif has_e:
            st = ST_SKIP_UNSUPPORTED
            n_msg_first = 0
            n_msg_last = 0
        else:
            st = ST_SKIP_NONMARKET
            n_msg_first = 0
            n_msg_last = 0
        if st != ST_OK:
            n_lv = lv0
            m_type[n_msg] = -1
            nb = 0
            na = 0
        else:
            m_type[n_msg] = mt
        m_status[n_msg] = st
        m_local[n_msg] = loc
        m_exch[n_msg] = ts * 1_000_000 if ts != NO_TS else NO_TS
        m_first[n_msg] = n_msg_first
        m_last[n_msg] = n_msg_last
        m_prev[n_msg] = pu
        m_nb[n_msg] = nb
        m_na[n_msg] = na
        n_msg += 1
        i = eol + 1
        line_idx += 1
    market = 0  # 0 unknown, 1 usdm (diffs carry pu), 2 spot
    if saw_diff:
        market = 1 if saw_pu else 2
    return (
        m_type[:n_msg],
        m_local[:n_msg],
        m_exch[:n_msg],
        m_first[:n_msg],
        m_last[:n_msg],
        m_prev[:n_msg],
        m_nb[:n_msg],
        m_na[:n_msg],
        m_status[:n_msg],
        l_px[:n_lv],
        l_qty[:n_lv],
        l_side[:n_lv],
        err,
        line_idx,
        sym_s,
        sym_e,
        market,
    )
