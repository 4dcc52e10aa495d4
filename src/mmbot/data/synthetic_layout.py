"""Layout of the embedded market's compiled state: the float parameter vector (P_*), the integer
and float state vectors (S_*, F_*), ring-buffer sizes and the event codes the generator emits
(see ``mmbot.data.synthetic`` for the model)."""

from __future__ import annotations

from mmbot.book import RING_NONE, RING_TICKS
from mmbot.events import (
    BUY_EVENT,
    DEPTH_EVENT,
    DEPTH_SNAPSHOT_EVENT,
    EXCH_EVENT,
    LOCAL_EVENT,
    SELL_EVENT,
    TRADE_EVENT,
)

# the book is mmbot.book's ring: RING_TICKS slots per side (re-exported here with the rest of the
# layout); levels farther than max_levels from the efficient price are trimmed and a stale side is
# capped at RING_TICKS/4 from it, so a side's live range always fits the ring.
MAX_DEPTH_LEVELS = RING_TICKS // 8  # most depth-target levels a calibration may list
# warm-up of the book before the snapshot, so the first emitted book is already in its regime
WARMUP_NS = 30_000_000_000
# prints one simulated event (one ms of a sweep) emits at most; the calibrated engine
# throughput (model.sweep_prints_per_ms) is capped at this
MAX_PRINTS = 512
# the first NEAR_LEVELS levels' intensities are exact at every event; deeper ones are refreshed
# every FAR_EVERY events or when the level grid moved by more than FAR_SHIFT ticks (speed)
NEAR_LEVELS = 16
FAR_EVERY = 16
FAR_SHIFT = 2
# a level draw's second walk skips this many levels at a time while the draw lies past their sum
PICK_BLOCK = 8

# --- layout of the float parameter vector handed to the compiled core -------------------------
P_SIGMA_TICKS = 0  # diffusion of v, ticks per sqrt(s)
P_JUMP_RATE = 1  # jumps per s
P_JUMP_TICKS = 2  # mean absolute jump size, ticks (double-exponential)
P_CANCEL_RATE = 3  # cancel hazard of a resting maker order, per s
P_REFILL_RATE = 4  # queue-reactive refill speed toward the level target, per s
P_STALE_RATE = 5  # cancel hazard of each order of a stale touch, per s
P_STALE_EDGE = 6  # how far (ticks) v must be past a touch before its makers pull it
P_NOISE_MU = 7  # Hawkes baseline, parent market orders per s (both sides)
P_HAWKES_N = 8  # branching ratio
P_HAWKES_BETA = 9  # kernel decay, per s
P_INFORMED_RATE = 10  # informed parents per s per tick of mispricing beyond the edge
P_INFORMED_EDGE = 11  # how far (ticks) v must be past the touch for the informed to trade
P_TICK_PX = 12
P_LOT_QTY = 13
P_MAKER_LOTS = 14  # mean maker order size, lots
P_SAME_SIDE = 15  # probability that a noise parent repeats the previous parent's side
P_IMPACT = 16  # share of a noise sweep's touch move that the efficient price keeps
P_LAT_TAU_S = 17  # correlation time of the feed latency, s
P_EXCESS_RATE = 18  # speed at which queues above their target are cancelled, per s
P_PRINTS_PER_MS = 19  # matching-engine throughput: prints one sweep stamps per ms
P_TRANSIENT = 20  # share of a noise sweep's touch move that displaces the book and then decays
P_TRANSIENT_DECAY = 21  # decay rate of that displacement, per s
P_IMPACT_CAP = 22  # ticks: the impact of a sweep saturates at this scale of its touch move
# 1: the stale-pull hazard covers every order on the wrong side of v, not only the touch's (on a
# fine tick v moves many levels past the touch, and pulling one level at a time left the mid
# trailing v by seconds: 60 s variance 3x the 1 s variance's sixtyfold). 0 (default): the touch's
P_STALE_DEPTH = 23
# 1: a queue-reactive cancel takes a level's whole excess over its target at once (one book row,
# as a depth-diff feed reports a level once per update) instead of one maker order (fine tick:
# the level ladder moves with v tick by tick, and order-by-order cancels were ~4x the capture's
# level updates). 0 (default): one maker order
P_EXCESS_WHOLE = 24
# 1: a queue-reactive join brings a level up to its target at once (one row), for the same reason
P_REFILL_WHOLE = 25
# ticks: makers re-centre the level ladder only when v has moved more than this from where it was
# last centred (fine tick: a ladder keyed to v itself moved with every tick v crossed, and the
# touch changed ~3x as often as the capture's). Stale pulls start this far past the touch too.
# 0 (default): the ladder follows v
P_REF_HYST = 26
# 1: a stale pull takes the whole stale touch level at once (one book row) and the pull hazard is
# per stale level, not per order (makers cancel quotes the efficient price has passed within a few
# ms of each other, and the depth-diff feed reports the level once). With per-order pulls fast
# enough to keep the mid on v, the touch changed ~2.5x as often as on the captures; slow enough to
# match the touch rate, the mid trailed v and its 100 ms returns continued each other
# (autocorrelation +0.14..+0.29 against the captures' +0.01..+0.10). 0 (default): one order
P_STALE_WHOLE = 27
# 1: after a noise sweep has moved v, the makers on the swept side pull at once every level the new
# v has passed by more than the stale edge (one book row each): they re-quote on the print, as the
# captures' book does (its spread is wider than one tick almost only in the few ms after an
# aggressor order, then the far side follows). Pulled order by order at the stale hazard instead,
# the touch trailed v by ~0.5 s after every sweep: 100 ms returns continued each other, the 100 ms
# print markout was below the 1 s one (the captures' is above it) and the spread sat at 2-3 ticks
# 6 % of the time, away from trades. 0 (default): no re-quote
P_SWEEP_REQUOTE = 28
# s: slow resilience after a sweep. A sweep that empties its side's first level leaves that side's
# level targets depleted, target x (1 - D) (whole lots, rounded), D set to P_RESIL_DEPLETION at the
# sweep's end and halving every P_RESIL_HALF_LIFE_S: the makers rebuild the side over seconds
# instead of within ms (queues above the full target are still cancelled as before, so a sweep
# pulls nothing it did not take). The captures' near book is thin for a while after a sweep, and
# the next small aggressor walks further. The fitted depth targets sit almost all on the ladder's
# first level (COIN-M: 1662 of the 1663 contracts within 1 bps), so that level is depleted too.
# 0 (default): off
P_RESIL_HALF_LIFE_S = 29
P_RESIL_DEPLETION = 30  # D right after the sweep (share of each level's target, 0..1)
# a depleted side's intensities are re-evaluated at least this many times a half-life (null
# events; at least every RESIL_CHECK_MIN_NS)
RESIL_CHECKS_PER_HALF_LIFE = 32
RESIL_CHECK_MIN_NS = 1_000_000
# 1: any retreat of a side's touch (a sweep, a cancel or a stale pull emptying it) depletes that
# side, not only a sweep's. 0 (default): sweeps only
P_RESIL_RETREAT = 31
# opportunistic takers: the noise parents that take a side arrive at their rate times
# min(P_THIN_CAP, (q / q_target) ** -P_THIN_BETA), q the side's near depth (lots within
# P_THIN_LEVELS levels of its touch, about 1 bps) and q_target its fitted target there
# (P_THIN_TARGET_LOTS): on the captures aggressor orders meet a taken side already thin (COIN-M:
# median 0.345 of its mean depth within 1 bps), on a market whose takers arrive at random times
# about 1.1. Drawn by thinning (candidates at the cap times the rate, accepted with probability
# factor / cap), so the process is exact. 0 (default): off
P_THIN_BETA = 32
P_THIN_CAP = 33  # the cap M on that factor (>= 1)
P_THIN_LEVELS = 34  # derived: levels from the touch that count as near (1 bps, at least 1)
P_THIN_TARGET_LOTS = 35  # derived: the depth targets' lots over those levels
# per s: the makers pull one side's near book on their own, at Poisson times (the side a fair
# coin), before any order comes: the side enters the depleted state a sweep leaves for slow
# resilience (D = P_PULL_DEPLETION, halving every P_RESIL_HALF_LIFE_S, which must then be > 0;
# or held, P_PULL_HOLD_S below) and
# every level within P_PULL_LEVELS of its touch is cancelled down to its depleted target (one
# row per level that changes); the touch keeps at least one lot, so a pull never moves it. On the
# captures aggressor orders meet a taken side already thin (COIN-M: median 0.345 of its mean
# depth within 1 bps; 9.57 % of 100 ms samples below 0.1x), which a depletion after the sweep
# cannot give. 0 (default): off
P_PULL_RATE = 36
P_PULL_LEVELS = 37  # derived: levels from the touch a pull reaches (1 bps, at least 1)
# s: a pull holds (the makers stay away): the pulled side's targets are target x (1 -
# P_PULL_DEPLETION) for an exponential time of this mean (drawn from the market's own stream; a
# pull during a hold keeps the later end), the makers do not rebuild it meanwhile, and at the end
# the targets are whole again and the refill brings the side back at once. The side is held
# 1 - exp(-P_PULL_RATE / 2 x this) of the time. 0 (default): a pull is the slow-resilience
# depletion above instead (needs P_RESIL_HALF_LIFE_S > 0)
P_PULL_HOLD_S = 38
# D of a pull (share of each near level's target pulled, 0..1); defaults to P_RESIL_DEPLETION, so
# a pull without a hold is what it was. Its own field: with a hold it is the depth of the thin
# state, which need not be the depth a sweep leaves, and slow resilience may be off
P_PULL_DEPLETION = 39
# 0/1: a sweep's fill at a level past its first that holds less than the maker order drawn is an
# order of that level, drawn from the maker size table below what the level holds (the last fill
# the remainder), not the whole level. A level is one queue, refilled to its target in one join
# (refill_whole), so with maker orders larger than a deep level (COIN-M: 66 lots 2-5 bps out,
# maker draws above that ~40 % of the time) a deep sweep printed whole levels. 0 (default): off
P_DEEP_SPLIT = 40
# 0/1: the rest of a maker order a taker took only part of stays at the front of its level
# (S_FRONT_PX, S_FRONT_LOTS), and the next taker there takes that rest before a new order is drawn.
# Without it every print draws a fresh maker order, so a taker arriving after a partial fill
# meets an order of the table's size, not the larger order's rest. 0 (default): off
P_FRONT_KEEP = 41
# a second transient share of a noise sweep's touch move, with its own (slower) decay per s: the
# captures' print markouts revert from 100 ms to 1 s and again from 1 s to 30 s, while their 1 s
# mid returns hardly revert; one transient decaying at one rate makes both reversions at that rate.
# 0 (default): off
P_SLOW_TRANSIENT = 42
P_SLOW_DECAY = 43
# momentum takers: each move of the mid (from any event) raises the intensity of noise parents on
# the side it moved toward (buys after an up-move) by this many per s per tick moved, decaying at
# P_MOM_DECAY per s. They are noise sweeps of that side that excite no Hawkes flow and move v by
# no impact: they trade on a move the price already made (with impact they chased their own
# moves, and on the USD-M market at 50 per s per bps ran away). On the USD-M capture 0.872 of the
# aggressor orders reaching 0.5 bps past the mid of 100 ms before had seen the mid move >= 0.25
# bps their way first. 0 (default): off
P_MOM_RATE = 44
P_MOM_DECAY = 45
N_PARAMS = 46
# where model_arrays takes each parameter from, in the order it reads them: (slot, "model" for a
# field of the calibration's model or "calib" for a top-level one, field, default (None: the field
# is required; a field name: that field's value), unit: "bps" is converted to ticks, "per_bps" to
# per tick, "" is taken as it is). P_TICK_PX, P_LOT_QTY and P_MAKER_LOTS it derives itself.
P_FIELDS: tuple[tuple[int, str, str, float | str | None, str], ...] = (
    (P_SIGMA_TICKS, "model", "sigma_bps_per_sqrt_s", None, "bps"),
    (P_JUMP_RATE, "model", "jump_rate_per_s", None, ""),
    (P_JUMP_TICKS, "model", "jump_size_bps", None, "bps"),
    (P_CANCEL_RATE, "model", "cancel_rate_per_s", None, ""),
    (P_REFILL_RATE, "model", "refill_rate_per_s", None, ""),
    # queues left behind by a moving price are pulled at this speed (default: the refill's)
    (P_EXCESS_RATE, "model", "excess_cancel_rate_per_s", "refill_rate_per_s", ""),
    (P_STALE_RATE, "model", "stale_cancel_rate_per_s", None, ""),
    (P_STALE_EDGE, "model", "stale_edge_bps", None, "bps"),
    (P_NOISE_MU, "model", "noise_base_rate_per_s", None, ""),
    (P_HAWKES_N, "model", "hawkes_branching_ratio", None, ""),
    (P_HAWKES_BETA, "model", "hawkes_decay_per_s", None, ""),
    (P_INFORMED_RATE, "model", "informed_rate_per_s_per_bps", None, "per_bps"),
    (P_INFORMED_EDGE, "model", "informed_edge_bps", None, "bps"),
    (P_SAME_SIDE, "model", "same_side_ratio", 0.0, ""),
    (P_IMPACT, "model", "impact_permanence_ratio", None, ""),
    (P_LAT_TAU_S, "calib", "feed_latency_corr_s", 0.0, ""),
    (P_PRINTS_PER_MS, "model", "sweep_prints_per_ms", MAX_PRINTS, ""),
    (P_TRANSIENT, "model", "impact_transient_ratio", 0.0, ""),
    (P_TRANSIENT_DECAY, "model", "impact_decay_per_s", 1.0, ""),
    (P_IMPACT_CAP, "model", "impact_cap_bps", 0.0, "bps"),
    (P_STALE_DEPTH, "model", "stale_pull_depth", 0.0, ""),
    (P_EXCESS_WHOLE, "model", "excess_cancel_whole", 0.0, ""),
    (P_REFILL_WHOLE, "model", "refill_whole", 0.0, ""),
    (P_REF_HYST, "model", "ladder_hysteresis_bps", 0.0, "bps"),
    (P_STALE_WHOLE, "model", "stale_pull_whole", 0.0, ""),
    (P_SWEEP_REQUOTE, "model", "sweep_requote", 0.0, ""),
    (P_RESIL_HALF_LIFE_S, "model", "resilience_half_life_s", 0.0, ""),
    (P_RESIL_DEPLETION, "model", "resilience_depletion", 1.0, ""),
    (P_RESIL_RETREAT, "model", "resilience_on_retreat", 0.0, ""),
    (P_THIN_BETA, "model", "taker_thin_exponent", 0.0, ""),
    (P_THIN_CAP, "model", "taker_thin_cap_ratio", 10.0, ""),
    (P_PULL_RATE, "model", "pull_rate_per_s", 0.0, ""),
    (P_PULL_HOLD_S, "model", "pull_hold_s", 0.0, ""),
    (P_DEEP_SPLIT, "model", "deep_print_split", 0.0, ""),
    (P_FRONT_KEEP, "model", "maker_front_keep", 0.0, ""),
    (P_SLOW_TRANSIENT, "model", "impact_slow_ratio", 0.0, ""),
    (P_SLOW_DECAY, "model", "impact_slow_decay_per_s", 0.1, ""),
    (P_MOM_RATE, "model", "momentum_rate_per_s_per_bps", 0.0, "per_bps"),
    (P_MOM_DECAY, "model", "momentum_decay_per_s", 20.0, ""),
)

# near depth within this many bps of the touch counts for the takers' thin-book factor and is
# what the makers' pulls reach
THIN_NEAR_BPS = 1.0

# --- integer state ---------------------------------------------------------------------------
S_T_NS = 0
S_PENDING_NS = 1
S_HAS_PENDING = 2
S_BEST_BID = 3
S_BEST_ASK = 4
S_LO_BID = 5
S_HI_ASK = 6
S_QB_LOTS = 7
S_QA_LOTS = 8
S_LAST_LOCAL_NS = 9
S_LAT_T_NS = 10  # exchange time of the last latency draw
S_FAR_AGE = 11  # draws since the deep-level sums were refreshed
S_FAR_TOP = 12  # bid / ask reference level they were computed for
S_FAR_BOT = 13
# a sweep longer than the engine prints in one ms continues at the next ms (the book rows of all
# the levels it consumed follow its last print, as on the venue's feed)
S_SWEEP_SIDE = 14  # +1 buy / -1 sell while a sweep is in progress, 0 otherwise
S_SWEEP_LOTS = 15  # lots the sweep still wants
S_SWEEP_NOISE = 16  # 1 if the sweep is a noise order (its touch move is partly permanent)
S_SWEEP_TOUCH0 = 17  # the opposite touch before the sweep's first print
S_SWEEP_NLV = 18  # levels it touched so far (their prices are in the sweep-level array)
S_SWEEP_LAST = 19  # last level it touched
S_RESIL_T_NS = 20  # exchange time of the last depleting sweep: bid side, then ask side (+1)
S_RESIL_TOUCH = 22  # bid and ask touch as of the last draw (P_RESIL_RETREAT)
# 1: the pending event is a null one, drawn only to re-evaluate the intensities of a depleted
# side (they grow between events as D decays; without it a quiet book waited for the next event)
S_RESIL_NULL = 24
S_HOLD_END_NS = 25  # exchange time a pull's hold ends (P_PULL_HOLD_S): bid side, then ask side
# P_FRONT_KEEP: the price (ticks) of the maker order at the front of a side's level that a taker
# took part of, and the lots of it left (0: none): bid side, then ask side (+1)
S_FRONT_PX = 27
S_FRONT_LOTS = 29
N_ISTATE = 31
# --- float state: v, Hawkes excess, and the rates drawn with for the pending event -------------
F_V = 0
F_HAWKES = 1
F_BOUND = 2
F_R0 = 3  # 9 rates: bid arrivals, ask arrivals, bid cancels, ask cancels, informed buy,
N_RATES = 9  # informed sell, stale bid, stale ask, jump of v
K_JUMP = 8
K_SWEEP = N_RATES + 1  # the next ms of a sweep in progress (not a new order)
K_PULL = N_RATES + 2  # the makers pull one side's near book (P_PULL_RATE)
F_LAST_SIDE = F_R0 + N_RATES  # side of the last parent (+1 buy, -1 sell)
F_LAT_Z = F_LAST_SIDE + 1  # Gaussian state of the feed latency (AR(1) copula)
# simulated events so far, by kind (-1 = null .. N_RATES = noise parent, then K_SWEEP's slot,
# unused, and K_PULL's)
F_STEPS = F_LAT_Z + 1
F_NEAR = F_STEPS + K_PULL + 2  # missing bid, missing ask, excess bid, excess ask: near levels
F_FAR = F_NEAR + 4  # the same over the deep levels (refreshed less often)
F_SPARE = F_FAR + 4  # second normal of the last Box-Muller pair, and whether it is unused
F_SPARE_OK = F_SPARE + 1
F_SWEEP_LIMIT = F_SPARE_OK + 1  # limit price (ticks) of the sweep in progress
# transient part of v (ticks): the book is built around v, the informed trade against v minus it
F_TRANSIENT = F_SWEEP_LIMIT + 1
F_VREF = F_TRANSIENT + 1  # where the makers' level ladder is centred (v, with P_REF_HYST)
F_RESIL_D = F_VREF + 1  # depletion D set by the last depleting sweep: bid side, then ask side
F_RESIL_G = F_RESIL_D + 2  # 1 - D now (as of the last draw): bid side, then ask side
F_SLOW = F_RESIL_G + 2  # the slow part of F_TRANSIENT (P_SLOW_TRANSIENT), ticks
F_MOM = F_SLOW + 1  # momentum takers' intensity (P_MOM_RATE), per s: buy side, then sell side
F_MOM_MID = F_MOM + 2  # best bid + best ask (ticks) when the mid was last seen (0: not yet)
N_FSTATE = F_MOM_MID + 1

_NONE = RING_NONE  # empty book side (the ring's no-level mark)

# rows one simulated event can emit at most: prints + depth rows of a sweep, plus trims
_RESERVE_ROWS = 2 * MAX_PRINTS + 4 * RING_TICKS + 64

_FLAGS = EXCH_EVENT | LOCAL_EVENT
_EV_BID_DEPTH = DEPTH_EVENT | _FLAGS | BUY_EVENT
_EV_ASK_DEPTH = DEPTH_EVENT | _FLAGS | SELL_EVENT
_EV_BUY_TRADE = TRADE_EVENT | _FLAGS | BUY_EVENT
_EV_SELL_TRADE = TRADE_EVENT | _FLAGS | SELL_EVENT
_EV_BID_SNAP = DEPTH_SNAPSHOT_EVENT | _FLAGS | BUY_EVENT
_EV_ASK_SNAP = DEPTH_SNAPSHOT_EVENT | _FLAGS | SELL_EVENT
