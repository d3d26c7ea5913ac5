-- Tasks and the checkpoints of background loops.
-- Ids are canonical lowercase UUID strings; times are UTC text in the fixed
-- form 2006-01-02T15:04:05.000000Z, so that text order is time order.

-- +goose Up
CREATE TABLE tasks (
    id                TEXT    PRIMARY KEY NOT NULL,
    code              TEXT    NOT NULL,
    prompt            TEXT    NOT NULL,
    timeout_ms        INTEGER NOT NULL CHECK (timeout_ms > 0),
    status            TEXT    NOT NULL CHECK (status IN ('pending', 'queued', 'running', 'completed', 'failed', 'cancelled')),
    worker_id         TEXT,
    result            TEXT    CHECK (result IS NULL OR json_valid(result)),
    error_message     TEXT,
    attempts          INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    execution_time_ms INTEGER CHECK (execution_time_ms >= 0),
    created_at        TEXT    NOT NULL,
    updated_at        TEXT    NOT NULL,
    started_at        TEXT,
    completed_at      TEXT
);

-- Newest-first keyset listing of every task.
CREATE INDEX tasks_created_at_id_idx ON tasks (created_at DESC, id DESC);
-- Listing by status (newest first, scanned backwards) and sweeps (oldest first).
CREATE INDEX tasks_status_created_at_id_idx ON tasks (status, created_at, id);

CREATE TABLE checkpoints (
    name       TEXT PRIMARY KEY NOT NULL,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- +goose Down
DROP TABLE checkpoints;
DROP TABLE tasks;
