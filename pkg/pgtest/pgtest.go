// Package pgtest gives each test its own freshly migrated Postgres database.
//
// With a Docker engine it starts one Postgres container per test binary
// (testcontainers-go); without one it uses the server named by
// TEST_DATABASE_URL. With neither the test fails: integration tests never skip.
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
	"github.com/testcontainers/testcontainers-go"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"

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

// server returns the admin URL of the server tests use, starting a container
// once per process when Docker is available.
func server() (string, error) {
	serverOnce.Do(func() {
		if dockerAvailable() && os.Getenv("PGTEST_NO_DOCKER") == "" {
			serverURL, serverErr = startContainer()
			return
		}
		serverURL = os.Getenv(EnvURL)
		if serverURL == "" {
			serverErr = fmt.Errorf("no Docker engine and %s is unset: set it to a Postgres URL whose user may CREATE DATABASE (make test does)", EnvURL)
		}
	})
	return serverURL, serverErr
}

func dockerAvailable() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	p, err := testcontainers.NewDockerProvider()
	if err != nil {
		return false
	}
	defer p.Close() //nolint:errcheck // a probe: nothing to do if closing it fails
	return p.Health(ctx) == nil
}

func startContainer() (string, error) {
	ctx := context.Background()
	c, err := tcpostgres.Run(ctx, "postgres:17-alpine",
		tcpostgres.WithDatabase("postgres"),
		tcpostgres.WithUsername("postgres"),
		tcpostgres.WithPassword("postgres"),
		tcpostgres.BasicWaitStrategies(),
	)
	if err != nil {
		return "", fmt.Errorf("start postgres container: %w", err)
	}
	// The container is reaped by testcontainers' Ryuk when the process exits.
	return c.ConnectionString(ctx, "sslmode=disable")
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
