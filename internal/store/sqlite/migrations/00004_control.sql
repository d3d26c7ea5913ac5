-- Control and integration (issue 14): queue priority, client metadata, the
-- owner (API key name), the callback URL, the run of a retried task
-- (retries, and the attempt offset its job numbers attempts from), the
-- webhook delivery of the current run (the outbox: the update that gives
-- the task a final status makes it 'due'), and idempotency keys.

-- +goose Up
ALTER TABLE tasks ADD COLUMN priority INTEGER CHECK (priority BETWEEN 1 AND 2097151);
ALTER TABLE tasks ADD COLUMN metadata TEXT CHECK (metadata IS NULL OR json_type(metadata) = 'object');
ALTER TABLE tasks ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE tasks ADD COLUMN callback_url TEXT;
ALTER TABLE tasks ADD COLUMN retries INTEGER NOT NULL DEFAULT 0 CHECK (retries >= 0);
ALTER TABLE tasks ADD COLUMN attempt_offset INTEGER NOT NULL DEFAULT 0 CHECK (attempt_offset >= 0);
ALTER TABLE tasks ADD COLUMN webhook_state TEXT CHECK (webhook_state IN ('waiting', 'due', 'queued', 'delivered', 'failed'));
ALTER TABLE tasks ADD COLUMN webhook_attempts INTEGER NOT NULL DEFAULT 0 CHECK (webhook_attempts >= 0);
ALTER TABLE tasks ADD COLUMN webhook_last_status INTEGER;
ALTER TABLE tasks ADD COLUMN webhook_last_error TEXT;
ALTER TABLE tasks ADD COLUMN webhook_delivered_at TEXT;

-- Newest-first listing of one owner's tasks.
CREATE INDEX tasks_owner_created_at_id_idx ON tasks (owner, created_at DESC, id DESC);
-- The webhook relay's sweep of due deliveries.
CREATE INDEX tasks_webhook_due_idx ON tasks (updated_at, id) WHERE webhook_state = 'due';

CREATE TABLE idempotency_keys (
    owner      TEXT NOT NULL,
    key        TEXT NOT NULL,
    hash       BLOB NOT NULL,
    task_id    TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    PRIMARY KEY (owner, key)
);
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);

-- +goose Down
DROP TABLE idempotency_keys;
DROP INDEX tasks_webhook_due_idx;
DROP INDEX tasks_owner_created_at_id_idx;
ALTER TABLE tasks DROP COLUMN webhook_delivered_at;
ALTER TABLE tasks DROP COLUMN webhook_last_error;
ALTER TABLE tasks DROP COLUMN webhook_last_status;
ALTER TABLE tasks DROP COLUMN webhook_attempts;
ALTER TABLE tasks DROP COLUMN webhook_state;
ALTER TABLE tasks DROP COLUMN attempt_offset;
ALTER TABLE tasks DROP COLUMN retries;
ALTER TABLE tasks DROP COLUMN callback_url;
ALTER TABLE tasks DROP COLUMN owner;
ALTER TABLE tasks DROP COLUMN metadata;
ALTER TABLE tasks DROP COLUMN priority;
