-- The sanitized flag: text from outside (result, error message, worker id)
-- was changed to be stored (NUL removed, invalid UTF-8 replaced, cut to its
-- limit). See task.SanitizeText. 0 or 1.

-- +goose Up
ALTER TABLE tasks ADD COLUMN sanitized INTEGER NOT NULL DEFAULT 0 CHECK (sanitized IN (0, 1));

-- +goose Down
ALTER TABLE tasks DROP COLUMN sanitized;
