"""How sqlite.sql was made: a ledger written by the release before schema
versions (main fb70d72), so the upgrade is tested on a real file of it.

    git archive fb70d72 ab_router | tar -x -C /tmp/old
    cd /tmp/old && python make_fixture.py old.sqlite3
    sqlite3 old.sqlite3 .dump > tests/data/schema1/sqlite.sql

postgres-ddl.sql is that release's ``schema.ddl("postgres")``. Not run by
the tests (it needs the old code).
"""

import sys
from pathlib import Path

from ab_router.config import ExperimentConfig
from ab_router.ledger import SqliteLedger
from ab_router.records import Exposure, Mode, UnitKind

CONFIG = ExperimentConfig(name="exp", salt="s", weights={"v1": 0.5, "v2": 0.5})
path = Path(sys.argv[1])
ledger = SqliteLedger(path)
state = ledger.ensure_experiment(CONFIG)
rows = []
for i in range(60):
    assigned = "v1" if i % 2 else "v2"
    fallback = i % 13 == 0
    variant = ("v2" if assigned == "v1" else "v1") if fallback else assigned
    mode = Mode.SHADOW if i >= 40 else Mode.SPLIT
    rows.append(
        Exposure(
            request_id=f"r{i:03d}",
            experiment="exp",
            epoch=1 if i < 50 else 2,
            assigned_variant=assigned,
            variant=variant,
            unit_kind=UnitKind.CUSTOMER if i % 3 else UnitKind.REQUEST,
            unit_id=f"c{i % 17}" if i % 3 else None,
            mode=mode,
            churn_probability=((i * 37) % 100) / 100 + 0.004,
            prediction=int((i * 37) % 100 >= 50),
            latency_ms=0.5 + (i * 7.3) % 150,
            created_at=1_700_000_000.0 + i,
            fallback=fallback,
        )
    )
ledger.record_exposures(rows[:50])
ledger.record_shadow_scores(
    "v2",
    [
        (f"r{i:03d}", ((i * 53) % 100) / 100, int((i * 53) % 100 >= 50))
        for i in range(40, 50)
        if i % 2 == 0
    ],
)
for i in range(0, 50, 3):
    ledger.label_request(f"r{i:03d}", i % 2 == 0, observed_at=1_700_000_100.0 + i)
assert ledger.change_state(
    state,
    config=CONFIG,
    canary_stage=-1,
    new_epoch=True,
    kind="reset",
    reason="fixture",
    actor="admin",
)
ledger.record_exposures(rows[50:])
ledger.label_request("r051", True)
ledger.close()
