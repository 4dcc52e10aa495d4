"""Edge audit: exact per-fill edge decomposition of a run's records and the EDGE_REPORT built from it.

Public API: ``build_edge_report(results, runtime) -> dict`` (asserts the identity per run),
``decompose(result) -> FillEdges``, ``dump_json(obj, path)`` (deterministic, atomic),
``make_runtime(...)``; records on disk live in ``mmbot.audit.records_io`` (write_run / read_run).
"""

from mmbot.audit.decompose import (
    MARKOUT_HORIZONS_NS,
    AuditError,
    FillEdges,
    check_identity,
    decompose,
)
from mmbot.audit.edge_report import (
    build_edge_report,
    dump_json,
    dumps_json,
    load_json,
    make_runtime,
)

__all__ = [
    "MARKOUT_HORIZONS_NS",
    "AuditError",
    "FillEdges",
    "build_edge_report",
    "check_identity",
    "decompose",
    "dump_json",
    "dumps_json",
    "load_json",
    "make_runtime",
]
