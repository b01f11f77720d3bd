package pgtest

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// ApplyPSQL runs the psql script at path on databaseURL, with its psql
// variables (:"name" and :'name') set from vars, one statement at a time.
// It returns the first failure, for tests that expect one.
func ApplyPSQL(t testing.TB, databaseURL, path string, vars map[string]string) error {
	t.Helper()
	script, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	for _, stmt := range PSQLStatements(string(script), vars) {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return err
		}
	}
	return nil
}

// PSQLStatements splits a psql script into statements, dropping
// meta-commands and comments and substituting :"var" and :'var'.
func PSQLStatements(script string, vars map[string]string) []string {
	var lines []string
	for _, line := range strings.Split(script, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, `\`) || strings.HasPrefix(trimmed, "--") {
			continue
		}
		lines = append(lines, line)
	}
	text := strings.Join(lines, "\n")
	for k, v := range vars {
		text = strings.ReplaceAll(text, `:"`+k+`"`, pgx.Identifier{v}.Sanitize())
		text = strings.ReplaceAll(text, `:'`+k+`'`, "'"+strings.ReplaceAll(v, "'", "''")+"'")
	}
	var out []string
	for stmt := range strings.SplitSeq(text, ";") {
		if s := strings.TrimSpace(stmt); s != "" {
			out = append(out, s)
		}
	}
	return out
}
