-- The sanitized flag: text from outside (result, error message, worker id)
-- was changed to be stored (NUL removed, invalid UTF-8 replaced, cut to its
-- limit). See task.SanitizeText.

-- +goose Up
ALTER TABLE tasks ADD COLUMN sanitized boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE tasks DROP COLUMN sanitized;
