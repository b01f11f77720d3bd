package pgtest

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
)

// RolePassword is the password of every login role the tests create
// (LoginRole, SelectOnlyRole): a server that checks passwords on TCP (the
// Postgres containers of the Docker path, a CI service container:
// scram-sha-256) needs one, and trust authentication ignores it.
// Distinctive, so that a test can look for it in logs.
const RolePassword = "rm-test-pw-5f1c" //nolint:gosec // G101: a test-only password of throwaway roles on test servers

// LoginRole returns the statement creating the login role name, with
// RolePassword and the given options (e.g. "CREATEROLE").
func LoginRole(name string, options ...string) string {
	stmt := "CREATE ROLE " + pgx.Identifier{name}.Sanitize() + " LOGIN PASSWORD '" + RolePassword + "'"
	for _, o := range options {
		stmt += " " + o
	}
	return stmt
}

// AsRole returns dbURL with role, and RolePassword, as its user; the
// user dbURL already has keeps its own password.
func AsRole(t testing.TB, dbURL, role string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	if u.User == nil || u.User.Username() != role {
		u.User = url.UserPassword(role, RolePassword)
	}
	return u.String()
}

// SelectOnlyRole creates a login role holding exactly the API's grants on
// the database at dbURL, applied by running db/grants/api_readonly.sql as
// the database's owner, and returns dbURL as that role. The role and its
// grants are dropped when t ends (before the database, which New made
// earlier and so drops later).
func SelectOnlyRole(t testing.TB, dbURL string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	role := fmt.Sprintf("rm_ro_%d_%d", os.Getpid(), nextID())
	ident := pgx.Identifier{role}.Sanitize()

	admin, err := pgx.Connect(ctx, AdminURL(t))
	if err != nil {
		t.Fatalf("pgtest: connect to %s: %v", EnvURL, err)
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(ctx, LoginRole(role)); err != nil {
		t.Fatalf("pgtest: create role: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if owner, err := pgx.Connect(ctx, dbURL); err == nil {
			_, _ = owner.Exec(ctx, "DROP OWNED BY "+ident) // best effort: the database is dropped next
			_ = owner.Close(ctx)
		}
		if admin, err := pgx.Connect(ctx, AdminURL(t)); err == nil {
			if _, err := admin.Exec(ctx, "DROP ROLE IF EXISTS "+ident); err != nil {
				t.Logf("pgtest: drop role %s: %v", role, err)
			}
			_ = admin.Close(ctx)
		}
	})

	owner, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("pgtest: connect as the owner: %v", err)
	}
	defer owner.Close(context.Background())
	vars := map[string]string{"api_role": role, "dbname": strings.TrimPrefix(u.Path, "/")}
	for _, stmt := range PSQLStatements(db.APIReadOnlyGrants(), vars) {
		if _, err := owner.Exec(ctx, stmt); err != nil {
			t.Fatalf("pgtest: grants script: %s: %v", stmt, err)
		}
	}
	return AsRole(t, dbURL, role)
}
