// Package pgtest gives each test its own freshly migrated Postgres database.
//
// The server is, in this order:
//   - the one named by TEST_DATABASE_URL, when it is set: an explicit URL
//     always wins, so an engine that cannot pull changes nothing;
//   - otherwise, with a Docker engine (and PGTEST_NO_DOCKER unset), one
//     Postgres container per test binary, started through testcontainers-go
//     from PGTEST_IMAGE (default postgres:17-alpine), removed when the
//     process exits. A missing image that cannot be pulled is reported with
//     the ways out.
//
// With neither the test fails: integration tests never skip.
package pgtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rickmorty/rickmorty/db"
)

// EnvURL names the variable that points at a Postgres server whose user may
// create databases, e.g. postgres://postgres@127.0.0.1:5432/postgres.
const EnvURL = "TEST_DATABASE_URL"

var (
	serverOnce sync.Once
	serverURL  string
	serverErr  error
)

// server returns the admin URL of the server tests use: TEST_DATABASE_URL,
// else a container started once per process (docker.go).
func server() (string, error) {
	serverOnce.Do(func() {
		serverURL, serverErr = chooseServer(os.Getenv, dockerAvailable, startContainer)
	})
	return serverURL, serverErr
}

// chooseServer is server's decision, with the environment and the Docker
// side as parameters for its test.
func chooseServer(getenv func(string) string, docker func() bool, start func() (string, error)) (string, error) {
	if u := getenv(EnvURL); u != "" {
		return u, nil
	}
	if getenv(EnvNoDocker) != "" {
		return "", fmt.Errorf("%s is set (no Docker) and %s is unset: set it to a Postgres URL whose user may CREATE DATABASE (make test does)", EnvNoDocker, EnvURL)
	}
	if !docker() {
		return "", fmt.Errorf("no Docker engine and %s is unset: set it to a Postgres URL whose user may CREATE DATABASE (make test does)", EnvURL)
	}
	u, err := start()
	if err != nil {
		return "", fmt.Errorf("%w\n  (%s unset and a Docker engine answers, so the tests use a container)", err, EnvURL)
	}
	return u, nil
}

// New creates a migrated database for t, dropped when t ends, and returns its URL.
func New(t testing.TB) string {
	t.Helper()
	return create(t, true)
}

// NewEmpty creates a database without any schema, for tests of migrations.
func NewEmpty(t testing.TB) string {
	t.Helper()
	return create(t, false)
}

func create(t testing.TB, migrated bool) string {
	t.Helper()
	admin, err := server()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("pgtest: connect to %s: %v", EnvURL, err)
	}
	defer conn.Close(ctx)

	stmt := "CREATE DATABASE %s"
	if migrated {
		tmpl, err := ensureTemplate(ctx, conn, admin)
		if err != nil {
			t.Fatalf("pgtest: %v", err)
		}
		stmt += " TEMPLATE " + tmpl
	}
	name := fmt.Sprintf("rmtest_%d_%d", os.Getpid(), nextID())
	if _, err := conn.Exec(ctx, fmt.Sprintf(stmt, name)); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("pgtest: drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name)); err != nil {
			t.Errorf("pgtest: drop %s: %v", name, err)
		}
	})
	return withDatabase(admin, name)
}

// NewPool is New plus a pool on the new database, closed when t ends.
func NewPool(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	dbURL := New(t)
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatalf("pgtest: pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool, dbURL
}

// AdminURL returns the URL of the server's administrative database, for
// tests that create roles or terminate backends.
func AdminURL(t testing.TB) string {
	t.Helper()
	u, err := server()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return u
}

var (
	idMu sync.Mutex
	id   int
)

func nextID() int {
	idMu.Lock()
	defer idMu.Unlock()
	id++
	return id
}

// ensureTemplate migrates a template database once per schema content, so
// each test's database is a cheap copy. An advisory lock serialises the test
// binaries that go test runs in parallel.
func ensureTemplate(ctx context.Context, conn *pgx.Conn, admin string) (string, error) {
	name := "rmtmpl_" + schemaHash()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(774411)"); err != nil {
		return "", fmt.Errorf("lock template: %w", err)
	}
	defer conn.Exec(context.Background(), "SELECT pg_advisory_unlock(774411)") //nolint:errcheck // released with the connection anyway

	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate)", name).Scan(&exists); err != nil {
		return "", fmt.Errorf("look up template: %w", err)
	}
	if exists {
		return name, nil
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s", name)); err != nil {
		return "", fmt.Errorf("drop half-made template: %w", err)
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s", name)); err != nil {
		return "", fmt.Errorf("create template: %w", err)
	}
	if _, err := db.Migrate(withDatabase(admin, name)); err != nil {
		return "", fmt.Errorf("migrate template: %w", err)
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s WITH is_template true ALLOW_CONNECTIONS false", name)); err != nil {
		return "", fmt.Errorf("mark template: %w", err)
	}
	return name, nil
}

// schemaHash identifies the embedded migrations' content.
func schemaHash() string {
	h := sha256.New()
	_ = fs.WalkDir(db.Migrations(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(db.Migrations(), path)
		h.Write([]byte(path))
		h.Write(b)
		return err
	})
	return hex.EncodeToString(h.Sum(nil))[:12]
}

func withDatabase(serverURL, name string) string {
	u, err := url.Parse(serverURL)
	if err != nil {
		panic(fmt.Sprintf("pgtest: bad server URL: %v", err))
	}
	u.Path = "/" + name
	return u.String()
}
