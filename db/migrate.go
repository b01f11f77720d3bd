// Package db embeds the schema migrations and applies them with golang-migrate.
package db

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"strings"

	"github.com/golang-migrate/migrate/v4"
	_ "github.com/golang-migrate/migrate/v4/database/pgx/v5" // registers the pgx5:// driver
	"github.com/golang-migrate/migrate/v4/source/iofs"
)

//go:embed migrations/*.sql
var migrations embed.FS

//go:embed grants/api_readonly.sql
var apiReadOnlyGrants string

// SchemaVersion is the migration version the binaries in this build expect.
// 2: ingest_runs.result may be 'refused'; 3: 64-bit ids, rejected records;
// 4: trigram indexes for the list filters.
const SchemaVersion = 4

// Migrate applies every pending up migration to the database at databaseURL.
// golang-migrate holds a Postgres advisory lock while it works, so two
// concurrent calls are safe: the second waits and then finds nothing to do.
func Migrate(databaseURL string) (version uint, err error) {
	m, err := newMigrate(databaseURL)
	if err != nil {
		return 0, err
	}
	defer func() {
		srcErr, dbErr := m.Close()
		if err == nil {
			err = errors.Join(srcErr, dbErr)
		}
	}()
	if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return 0, fmt.Errorf("apply migrations: %w", err)
	}
	v, dirty, err := m.Version()
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	if dirty {
		return v, fmt.Errorf("schema version %d is dirty: a migration failed half way; fix it by hand and force the version", v)
	}
	return v, nil
}

func newMigrate(databaseURL string) (*migrate.Migrate, error) {
	src, err := iofs.New(migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("open embedded migrations: %w", err)
	}
	dbURL, err := pgx5URL(databaseURL)
	if err != nil {
		return nil, err
	}
	m, err := migrate.NewWithSourceInstance("iofs", src, dbURL)
	if err != nil {
		return nil, fmt.Errorf("connect for migrations: %w", err)
	}
	return m, nil
}

// pgx5URL turns a postgres:// URL into the pgx5:// scheme golang-migrate's
// pgx/v5 driver registers.
func pgx5URL(databaseURL string) (string, error) {
	u, err := url.Parse(databaseURL)
	if err != nil || u.Scheme == "" {
		return "", errors.New("database URL must be a URL like postgres://user@host:5432/db")
	}
	switch strings.ToLower(u.Scheme) {
	case "postgres", "postgresql", "pgx5":
		u.Scheme = "pgx5"
	default:
		return "", fmt.Errorf("database URL scheme %q is not postgres://", u.Scheme)
	}
	return u.String(), nil
}

// Migrations returns the embedded migration files.
func Migrations() fs.FS { return migrations }

// APIReadOnlyGrants returns db/grants/api_readonly.sql, the grants of the
// API's SELECT-only role (a psql script with the variables api_role and
// dbname), for tests that run a binary as such a role.
func APIReadOnlyGrants() string { return apiReadOnlyGrants }
