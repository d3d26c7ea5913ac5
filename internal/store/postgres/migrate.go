package postgres

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"hash/crc32"
	"io/fs"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrate applies the pending migrations to the schema the pool's
// search_path selects. A session advisory lock, keyed by that schema,
// serializes concurrent migrators of the same schema.
func migrate(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) error {
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()

	schema, err := currentSchema(ctx, db)
	if err != nil {
		return err
	}
	locker, err := lock.NewPostgresSessionLocker(
		lock.WithLockID(int64(crc32.ChecksumIEEE([]byte("orchestrator-migrate:"+schema)))),
		lock.WithLockTimeout(1, 120),
	)
	if err != nil {
		return fmt.Errorf("migration lock: %w", err)
	}
	fsys, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithSessionLocker(locker), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate schema %s: %w", schema, err)
	}
	for _, r := range results {
		log.InfoContext(ctx, "applied migration", "schema", schema, "version", r.Source.Version, "duration", r.Duration)
	}
	return nil
}

func currentSchema(ctx context.Context, db *sql.DB) (string, error) {
	var schema sql.NullString
	if err := db.QueryRowContext(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return "", fmt.Errorf("read current schema: %w", err)
	}
	if !schema.Valid {
		return "", fmt.Errorf("no current schema: the search_path names no existing schema")
	}
	return schema.String, nil
}
