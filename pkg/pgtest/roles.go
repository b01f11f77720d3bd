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
	if _, err := admin.Exec(ctx, "CREATE ROLE "+ident+" LOGIN"); err != nil {
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
	u.User = url.User(role)
	return u.String()
}
