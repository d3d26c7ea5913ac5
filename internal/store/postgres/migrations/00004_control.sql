-- Control and integration (issue 14): queue priority, client metadata, the
-- owner (API key name), the callback URL, the run of a retried task
-- (retries, and the attempt offset its job numbers attempts from), the
-- webhook delivery of the current run (the outbox: the update that gives
-- the task a final status makes it 'due'), and idempotency keys.

-- +goose Up
ALTER TABLE tasks
    ADD COLUMN priority             integer     CHECK (priority BETWEEN 1 AND 2097151),
    ADD COLUMN metadata             jsonb       CHECK (metadata IS NULL OR jsonb_typeof(metadata) = 'object'),
    ADD COLUMN owner                text        NOT NULL DEFAULT '',
    ADD COLUMN callback_url         text,
    ADD COLUMN retries              integer     NOT NULL DEFAULT 0 CHECK (retries >= 0),
    ADD COLUMN attempt_offset       integer     NOT NULL DEFAULT 0 CHECK (attempt_offset >= 0),
    ADD COLUMN webhook_state        text        CHECK (webhook_state IN ('waiting', 'due', 'queued', 'delivered', 'failed')),
    ADD COLUMN webhook_attempts     integer     NOT NULL DEFAULT 0 CHECK (webhook_attempts >= 0),
    ADD COLUMN webhook_last_status  integer,
    ADD COLUMN webhook_last_error   text,
    ADD COLUMN webhook_delivered_at timestamptz;

-- Newest-first listing of one owner's tasks.
CREATE INDEX tasks_owner_created_at_id_idx ON tasks (owner, created_at DESC, id DESC);
-- Metadata filter: metadata @> '{"key": "value"}'.
CREATE INDEX tasks_metadata_idx ON tasks USING gin (metadata jsonb_path_ops);
-- The webhook relay's sweep of due deliveries.
CREATE INDEX tasks_webhook_due_idx ON tasks (updated_at, id) WHERE webhook_state = 'due';

CREATE TABLE idempotency_keys (
    owner      text        NOT NULL,
    key        text        NOT NULL,
    hash       bytea       NOT NULL,
    task_id    uuid        NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (owner, key)
);
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);

-- +goose Down
DROP TABLE idempotency_keys;
DROP INDEX tasks_webhook_due_idx;
DROP INDEX tasks_metadata_idx;
DROP INDEX tasks_owner_created_at_id_idx;
ALTER TABLE tasks
    DROP COLUMN webhook_delivered_at,
    DROP COLUMN webhook_last_error,
    DROP COLUMN webhook_last_status,
    DROP COLUMN webhook_attempts,
    DROP COLUMN webhook_state,
    DROP COLUMN attempt_offset,
    DROP COLUMN retries,
    DROP COLUMN callback_url,
    DROP COLUMN owner,
    DROP COLUMN metadata,
    DROP COLUMN priority;
