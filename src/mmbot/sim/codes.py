"""Codes of the compiled venue: sides, time in force, order types, order status, pending
requests, time-advance results, verb errors, response kinds, and the numpy-scalar call arguments.

Owns the numbers only; they are plain module constants so compiled code freezes them.
"""

from __future__ import annotations

import numpy as np

from mmbot import records as rec

BUY = 1
SELL = -1

TIF_GTC = 0  # rests; takes first if it crosses
TIF_GTX = 1  # post-only: rejected if it would cross
TIF_IOC = 2  # takes what it can, the rest expires

ORD_LIMIT = 0
ORD_MARKET = 1  # walks the book without a price limit; the rest expires

# order status (both the local view `status` and the exchange view `ex_status`)
ST_NONE = 0  # empty slot / not yet at the exchange
ST_PENDING_NEW = 1  # sent, not acknowledged (local view only)
ST_LIVE = 2  # resting (possibly partially filled)
ST_FILLED = 3
ST_CANCELLED = 4
ST_REJECTED = 5
ST_EXPIRED = 6

# pending request of a slot (local view)
REQ_NONE = 0
REQ_NEW = 1
REQ_CANCEL = 2
REQ_MODIFY = 3

# time-advance results
OK = 0  # reached the requested time
WAIT_FEED = 1  # stopped at a local market-data event
WAIT_RESPONSE = 2  # stopped at an order response
END_OF_DATA = 3  # no market data left

# verb errors (negative returns); the first one is kept and raised as UserError by finish()
ERR_NO_SLOT = -1
ERR_BAD_QTY = -2
ERR_OFF_TICK = -3
ERR_PENDING = -4  # the order already has a request in flight
ERR_NOT_LIVE = -5  # unknown order id or already done (local view)
ERR_BAD_SIDE = -6
ERR_BAD_PX = -7
ERR_OFF_LOT = -8
ERR_BAD_TIF = -9  # unknown time in force or order type
ERR_PAST = -10  # feed(): the new block starts before the venue's clock

# response kinds (exchange -> local)
R_ACK_NEW = 0
R_ACK_MODIFY = 1
R_REJECT = 2
R_CANCELLED = 3
R_FILL = 4
R_EXPIRED = 5

I64_MAX = np.iinfo(np.int64).max

# call-argument constants as numpy scalars: numba compiles a separate copy of a function for
# every distinct *literal* argument (Python ints/bools), which multiplied cold-compile time
_TRUE = np.bool_(True)
_FALSE = np.bool_(False)
_I0 = np.int64(0)
_I1 = np.int64(1)
_IM1 = np.int64(-1)
_F0 = np.float64(0.0)

_ACT_ACKED = np.int64(rec.ACT_ACKED)
_ACT_CANCELLED = np.int64(rec.ACT_CANCELLED)
_ACT_EXPIRED = np.int64(rec.ACT_EXPIRED)
_ACT_FILLED = np.int64(rec.ACT_FILLED)
_ACT_REJECTED = np.int64(rec.ACT_REJECTED)
_ACT_SENT = np.int64(rec.ACT_SENT)

_OP_CANCEL = np.int64(rec.OP_CANCEL)
_OP_NEW = np.int64(rec.OP_NEW)
_OP_REPLACE = np.int64(rec.OP_REPLACE)

_REASON_NONE = np.int64(rec.REASON_NONE)
_REASON_POST_ONLY = np.int64(rec.REASON_POST_ONLY)
_REASON_PRICE_BAND = np.int64(rec.REASON_PRICE_BAND)
_REASON_RATE_LIMIT = np.int64(rec.REASON_RATE_LIMIT)
_REASON_UNKNOWN_ORDER = np.int64(rec.REASON_UNKNOWN_ORDER)

_R_ACK_MODIFY = np.int64(R_ACK_MODIFY)
_R_ACK_NEW = np.int64(R_ACK_NEW)
_R_CANCELLED = np.int64(R_CANCELLED)
_R_EXPIRED = np.int64(R_EXPIRED)
_R_FILL = np.int64(R_FILL)
_R_REJECT = np.int64(R_REJECT)
