-- Tasks and the checkpoints of background loops.

-- +goose Up
CREATE TABLE tasks (
    id                uuid        PRIMARY KEY,
    code              text        NOT NULL,
    prompt            text        NOT NULL,
    timeout_ms        bigint      NOT NULL CHECK (timeout_ms > 0),
    status            text        NOT NULL CHECK (status IN ('pending', 'queued', 'running', 'completed', 'failed', 'cancelled')),
    worker_id         text,
    result            jsonb,
    error_message     text,
    attempts          integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    execution_time_ms bigint      CHECK (execution_time_ms >= 0),
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    started_at        timestamptz,
    completed_at      timestamptz
);

-- Newest-first keyset listing of every task.
CREATE INDEX tasks_created_at_id_idx ON tasks (created_at DESC, id DESC);
-- Listing by status (newest first, scanned backwards) and sweeps (oldest first).
CREATE INDEX tasks_status_created_at_id_idx ON tasks (status, created_at, id);

CREATE TABLE checkpoints (
    name       text        PRIMARY KEY,
    value      text        NOT NULL,
    updated_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE checkpoints;
DROP TABLE tasks;
