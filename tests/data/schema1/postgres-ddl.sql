CREATE TABLE IF NOT EXISTS experiments (
    name TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    seed_config TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    canary_stage INTEGER NOT NULL,
    version BIGINT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS transitions (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    experiment TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    weights TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    actor TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS exposures (
    request_id TEXT PRIMARY KEY,
    seq BIGINT GENERATED ALWAYS AS IDENTITY,
    experiment TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    assigned_variant TEXT NOT NULL,
    variant TEXT NOT NULL,
    unit_kind TEXT NOT NULL,
    unit_id TEXT,
    mode TEXT NOT NULL,
    churn_probability DOUBLE PRECISION NOT NULL,
    prediction INTEGER NOT NULL,
    latency_ms DOUBLE PRECISION NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    fallback INTEGER NOT NULL,
    shadow_variant TEXT,
    shadow_probability DOUBLE PRECISION,
    shadow_prediction INTEGER,
    label INTEGER,
    labelled_at DOUBLE PRECISION,
    observed_at DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS exposures_by_epoch ON exposures (experiment, epoch);
CREATE INDEX IF NOT EXISTS exposures_by_unit ON exposures (unit_id, created_at);
