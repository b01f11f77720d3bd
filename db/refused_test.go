package db_test

import (
	"context"
	"strings"
	"testing"

	"github.com/golang-migrate/migrate/v4"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5"

	"github.com/rickmorty/rickmorty/db"
	"github.com/rickmorty/rickmorty/pkg/pgtest"
)

// TestRefusedResultMigratesUpAndDown: 0002 lets a run be 'refused'; its
// down migration turns those runs into 'failed' ones and restores 0001's
// constraint, and it applies again afterwards.
func TestRefusedResultMigratesUpAndDown(t *testing.T) {
	dbURL := pgtest.New(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "INSERT INTO ingest_runs (result, error) VALUES ('refused', 'mass-delete guard refused the sync')"); err != nil {
		t.Fatalf("a refused run at schema %d: %v", db.SchemaVersion, err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO ingest_runs (result) VALUES ('bogus')"); err == nil {
		t.Error("the constraint accepts any result")
	}

	src, err := iofs.New(db.Migrations(), "migrations")
	if err != nil {
		t.Fatal(err)
	}
	m, err := migrate.NewWithSourceInstance("iofs", src, "pgx5://"+strings.TrimPrefix(dbURL, "postgres://"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close() //nolint:errcheck // closing the test's migrator; nothing to do on failure
	if err := m.Migrate(1); err != nil {
		t.Fatalf("migrate down to 1: %v", err)
	}
	var result string
	if err := conn.QueryRow(ctx, "SELECT result FROM ingest_runs").Scan(&result); err != nil || result != "failed" {
		t.Errorf("after the down migration the refused run is %q (%v), want failed", result, err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO ingest_runs (result) VALUES ('refused')"); err == nil {
		t.Error("schema 1 accepts a refused run")
	}
	if err := m.Up(); err != nil {
		t.Fatalf("migrate up again: %v", err)
	}
	if v, dirty, err := m.Version(); err != nil || dirty || v != db.SchemaVersion {
		t.Errorf("version %d dirty %v (%v), want %d", v, dirty, err, db.SchemaVersion)
	}
}
