"""Order latency model: constant entry / response latency, or piecewise-linear in time from a
``(ts, entry, response)`` table.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def interp(ts_arr, val_arr, t):
    n = ts_arr.shape[0]
    if t <= ts_arr[0]:
        return val_arr[0]
    if t >= ts_arr[n - 1]:
        return val_arr[n - 1]
    j = np.searchsorted(ts_arr, t, side="right")
    t0 = ts_arr[j - 1]
    t1 = ts_arr[j]
    if t1 == t0:
        return val_arr[j]
    w = (t - t0) / (t1 - t0)
    return val_arr[j - 1] + w * (val_arr[j] - val_arr[j - 1])


@njit(cache=True)
def entry_latency(v, t):
    if v.lat_ts.shape[0] == 0:
        return v.entry_lat
    return np.int64(np.round(interp(v.lat_ts, v.lat_entry, t)))


@njit(cache=True)
def response_latency(v, t):
    if v.lat_ts.shape[0] == 0:
        return v.resp_lat
    return np.int64(np.round(interp(v.lat_ts, v.lat_resp, t)))
