package db_test

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/rickmorty/rickmorty/db"
	"github.com/rickmorty/rickmorty/pkg/pgtest"
)

func TestMigrateIsIdempotentAndSafeConcurrently(t *testing.T) {
	dbURL := pgtest.New(t) // already migrated from the template

	// Two migrators at once plus a third afterwards: all succeed, none changes anything.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = db.Migrate(dbURL)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent Migrate #%d: %v", i, err)
		}
	}
	v, err := db.Migrate(dbURL)
	if err != nil {
		t.Fatalf("Migrate again: %v", err)
	}
	if got, want := v, uint(db.SchemaVersion); got != want {
		t.Errorf("schema version = %d, want %d", got, want)
	}

	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var version int64
	if err := conn.QueryRow(context.Background(), "SELECT version FROM data_version").Scan(&version); err != nil {
		t.Fatalf("data_version row: %v", err)
	}
	if version != 0 {
		t.Errorf("initial data version = %d, want 0", version)
	}
}

func TestMigrateFreshDatabaseConcurrently(t *testing.T) {
	target := pgtest.NewEmpty(t)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() { _, errs[i] = db.Migrate(target) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Migrate #%d on a fresh database: %v", i, err)
		}
	}
}

func TestMigrateRejectsBadURL(t *testing.T) {
	if _, err := db.Migrate("mysql://x@y/z"); err == nil {
		t.Error("Migrate(mysql://...) = nil error, want an error")
	}
}
