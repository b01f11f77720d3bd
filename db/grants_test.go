package db_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rickmorty/rickmorty/db"
	"github.com/rickmorty/rickmorty/pkg/pgtest"
)

// TestGrantsAsEachRole runs each grants file as the least privileged role
// its header names, on a database owned by a plain role (no CREATEROLE, not
// a superuser), then checks with the real API role what it can and cannot
// do, and that the ingester's role still takes its lock.
func TestGrantsAsEachRole(t *testing.T) {
	ctx := context.Background()
	adminURL := pgtest.AdminURL(t)
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	suffix := fmt.Sprintf("%d_%d", os.Getpid(), time.Now().UnixNano()%1_000_000)
	owner, api, roleAdmin, dbName := "rm_owner_"+suffix, "rm_api_"+suffix, "rm_roleadmin_"+suffix, "rm_grants_"+suffix
	exec := func(sql string) {
		t.Helper()
		if _, err := admin.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	ident := func(s string) string { return pgx.Identifier{s}.Sanitize() }
	exec(pgtest.LoginRole(owner))
	exec(pgtest.LoginRole(api))
	exec(pgtest.LoginRole(roleAdmin, "CREATEROLE"))
	exec("CREATE DATABASE " + ident(dbName) + " OWNER " + ident(owner))
	t.Cleanup(func() {
		admin.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(dbName)+" WITH (FORCE)") //nolint:errcheck // best effort
		for _, r := range []string{api, owner, roleAdmin} {
			admin.Exec(ctx, "DROP ROLE IF EXISTS "+ident(r)) //nolint:errcheck // best effort
		}
	})
	as := func(role string) string {
		u, err := url.Parse(pgtest.AsRole(t, adminURL, role))
		if err != nil {
			t.Fatal(err)
		}
		u.Path = "/" + dbName
		return u.String()
	}
	superuser := mustUser(t, adminURL) // the admin URL's user: postgres, locally and in a container
	if _, err := db.Migrate(as(owner)); err != nil {
		t.Fatalf("migrate as the owner: %v", err)
	}

	vars := map[string]string{"api_role": api, "dbname": dbName, "ingester_role": owner}
	for _, step := range []struct{ file, url, who string }{
		{"api_readonly.sql", as(owner), "the owner of the database and tables"},
		{"api_role.sql", as(roleAdmin), "a role with CREATEROLE"},
		{"functions.sql", as(superuser), "a superuser"},
	} {
		if err := pgtest.ApplyPSQL(t, step.url, "grants/"+step.file, vars); err != nil {
			t.Fatalf("%s as %s: %v", step.file, step.who, err)
		}
	}
	// Each file needs what its header says: less is refused.
	if err := pgtest.ApplyPSQL(t, as(owner), "grants/api_role.sql", vars); err == nil {
		t.Error("api_role.sql succeeded as the owner, which lacks CREATEROLE: its header overstates what it needs")
	}
	if err := pgtest.ApplyPSQL(t, as(owner), "grants/functions.sql", vars); err == nil {
		t.Error("functions.sql succeeded as the owner: its header overstates what it needs")
	}

	conn, err := pgx.Connect(ctx, as(api))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM characters").Scan(&n); err != nil {
		t.Fatalf("the API role cannot read: %v", err)
	}
	if _, err := conn.Exec(ctx, "UPDATE data_version SET version = 0"); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("a write in the role's default session: %v, want refused as read-only", err)
	}
	// Even with its read-only default turned off, it can neither store
	// large objects nor squat the ingest lock.
	if _, err := conn.Exec(ctx, "SET default_transaction_read_only = off"); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		"SELECT lo_from_bytea(0, 'x')",
		"SELECT lo_create(0)",
		"SELECT lo_creat(-1)",
		"SELECT pg_try_advisory_lock(8245362415687267188)",
		"SELECT pg_advisory_lock(1)",
		"SELECT pg_try_advisory_lock(1, 2)",
		"SELECT pg_advisory_xact_lock(1)",
		"INSERT INTO data_version (version) VALUES (1)",
	} {
		if _, err := conn.Exec(ctx, stmt); err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("%s as the API role: err = %v, want permission denied", stmt, err)
		}
	}

	// The ingester's role keeps its lock, and migrating (golang-migrate's
	// lock) still works.
	ing, err := pgx.Connect(ctx, as(owner))
	if err != nil {
		t.Fatal(err)
	}
	defer ing.Close(ctx)
	var got bool
	if err := ing.QueryRow(ctx, "SELECT pg_try_advisory_lock(42)").Scan(&got); err != nil || !got {
		t.Errorf("the ingester's role cannot take an advisory lock: %v, %v", got, err)
	}
	if _, err := db.Migrate(as(owner)); err != nil {
		t.Errorf("migrate as the owner after functions.sql: %v", err)
	}
}

func mustUser(t *testing.T, dbURL string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil || u.User == nil {
		t.Fatalf("no user in %q: %v", dbURL, err)
	}
	return u.User.Username()
}
