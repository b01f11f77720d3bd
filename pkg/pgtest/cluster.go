package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rickmorty/rickmorty/db"
)

// Database topologies for the tests of the scaled read path: a primary of
// this process's own (initdb into a temporary directory, its own port), a
// hot standby streaming from it (pg_basebackup -R), and PgBouncer in front of
// either. They are real servers started from the PostgreSQL and PgBouncer
// binaries installed on the machine (scripts/ensure-pgbouncer.sh installs
// what is missing), owned by the test and stopped by pid when it ends. As
// root they run as the postgres user, since neither runs as root.

// EnvPGBin names an optional directory holding initdb, pg_ctl and
// pg_basebackup; by default the newest /usr/lib/postgresql/*/bin.
const EnvPGBin = "PGTEST_PG_BIN"

// Cluster is one Postgres server started by the test.
type Cluster struct {
	t       testing.TB
	dir     string // owned by the server's user
	data    string
	port    int
	bin     string
	asUser  []string // command prefix that runs as the server's user
	standby bool
}

// StartPrimary initialises and starts a primary that accepts replication
// connections, with a migrated database (DatabaseURL).
func StartPrimary(t testing.TB) *Cluster {
	t.Helper()
	c := newCluster(t, "primary")
	c.run("initdb", "-D", c.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
	c.appendConf(`
wal_level = replica
max_wal_senders = 10
hot_standby = on
`)
	c.appendFile("pg_hba.conf", "host replication postgres 127.0.0.1/32 trust\n")
	c.start()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		t.Fatalf("pgtest: connect to the primary: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+topologyDB); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	if _, err := db.Migrate(c.DatabaseURL()); err != nil {
		t.Fatalf("pgtest: migrate: %v", err)
	}
	return c
}

// topologyDB is the database a topology's tests use.
const topologyDB = "rickmorty"

// StartStandby starts a hot standby of c that applies the primary's changes
// applyDelay after they commit (recovery_min_apply_delay; 0 for none).
func (c *Cluster) StartStandby(t testing.TB, applyDelay time.Duration) *Cluster {
	t.Helper()
	s := newCluster(t, "standby")
	s.standby = true
	s.run("pg_basebackup", "-h", "127.0.0.1", "-p", strconv.Itoa(c.port), "-U", "postgres",
		"-D", s.data, "-R", "-X", "stream", "-c", "fast", "--no-sync")
	s.appendConf(fmt.Sprintf("recovery_min_apply_delay = '%dms'\n", applyDelay.Milliseconds()))
	s.start()
	return s
}

// URL returns a URL of database db on this server as the postgres user.
func (c *Cluster) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

// DatabaseURL returns the URL of the topology's database.
func (c *Cluster) DatabaseURL() string { return c.URL(topologyDB) }

// Port is the server's TCP port on 127.0.0.1.
func (c *Cluster) Port() int { return c.port }

// Stop stops the server at once (immediate shutdown, as a crash would).
func (c *Cluster) Stop() {
	c.t.Helper()
	c.pgctl("-m", "immediate", "stop")
}

// Start starts the server again after Stop.
func (c *Cluster) Start() {
	c.t.Helper()
	c.start()
}

// WaitReplayed waits until the standby has replayed everything the primary
// had committed when it was called.
func (c *Cluster) WaitReplayed(t testing.TB, primary *Cluster) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var lsn string
	if err := queryRow(ctx, primary.URL("postgres"), "SELECT pg_current_wal_insert_lsn()::text", &lsn); err != nil {
		t.Fatalf("pgtest: primary WAL position: %v", err)
	}
	for {
		var done bool
		err := queryRow(ctx, c.URL("postgres"), "SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", &done, lsn)
		if err == nil && done {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("pgtest: the standby did not replay %s: %v", lsn, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func queryRow(ctx context.Context, url, sql string, dst any, args ...any) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return conn.QueryRow(ctx, sql, args...).Scan(dst)
}

func newCluster(t testing.TB, name string) *Cluster {
	t.Helper()
	bin, err := pgBin()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	c := &Cluster{t: t, bin: bin}
	c.dir, c.asUser = ownedDir(t, "rickmorty-"+name+"-")
	c.data = filepath.Join(c.dir, "data")
	return c
}

func (c *Cluster) start() {
	c.t.Helper()
	if c.port == 0 {
		c.port = freePort(c.t)
		// The last setting wins over what pg_basebackup copied.
		c.appendConf(fmt.Sprintf(`
port = %d
listen_addresses = '127.0.0.1'
unix_socket_directories = '%s'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 100
`, c.port, c.dir))
	}
	if err := c.tryPgctl("-w", "-t", "60", "-l", filepath.Join(c.dir, "postgres.log"), "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "postgres.log"))
		c.t.Fatalf("pgtest: start postgres: %v\n%s", err, tail(string(log), 20))
	}
	c.t.Cleanup(func() { _ = c.tryPgctl("-m", "immediate", "stop") })
}

func (c *Cluster) pgctl(args ...string) {
	c.t.Helper()
	if err := c.tryPgctl(args...); err != nil {
		c.t.Fatalf("pgtest: pg_ctl %s: %v", strings.Join(args, " "), err)
	}
}

func (c *Cluster) tryPgctl(args ...string) error {
	return c.command("pg_ctl", append([]string{"-D", c.data}, args...)...).Run()
}

func (c *Cluster) run(tool string, args ...string) {
	c.t.Helper()
	if out, err := c.command(tool, args...).CombinedOutput(); err != nil {
		c.t.Fatalf("pgtest: %s: %v\n%s", tool, err, out)
	}
}

func (c *Cluster) command(tool string, args ...string) *exec.Cmd {
	argv := append(append(append([]string{}, c.asUser...), filepath.Join(c.bin, tool)), args...)
	cmd := exec.CommandContext(context.Background(), argv[0], argv[1:]...)
	cmd.Dir = c.dir
	return cmd
}

func (c *Cluster) appendConf(s string) { c.appendFile("postgresql.conf", s) }

func (c *Cluster) appendFile(name, s string) {
	c.t.Helper()
	f, err := os.OpenFile(filepath.Join(c.data, name), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		c.t.Fatalf("pgtest: %v", err)
	}
	_, err = f.WriteString(s)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		c.t.Fatalf("pgtest: %v", err)
	}
}

// PgBouncer is a PgBouncer started by the test.
type PgBouncer struct {
	port int
	cmd  *exec.Cmd
}

// StartPgBouncer starts PgBouncer in transaction pooling mode in front of
// target's topology database, with at most poolSize server connections,
// and returns it with its URL for that database.
func StartPgBouncer(t testing.TB, target *Cluster, poolSize int) (*PgBouncer, string) {
	t.Helper()
	path, err := exec.LookPath("pgbouncer")
	if err != nil {
		for _, p := range []string{"/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"} {
			if _, serr := os.Stat(p); serr == nil {
				path, err = p, nil
			}
		}
	}
	if err != nil {
		t.Fatal("pgtest: pgbouncer is not installed: run scripts/ensure-pgbouncer.sh (Debian's pgbouncer package)")
	}
	dir, asUser := ownedDir(t, "rickmorty-pgbouncer-")
	b := &PgBouncer{port: freePort(t)}
	ini := fmt.Sprintf(`[databases]
%[1]s = host=127.0.0.1 port=%[2]d dbname=%[1]s
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %[3]d
unix_socket_dir =
auth_type = trust
auth_file = %[4]s/users.txt
pool_mode = transaction
default_pool_size = %[5]d
max_client_conn = 500
server_reset_query =
logfile = %[4]s/pgbouncer.log
pidfile =
`, topologyDB, target.port, b.port, dir, poolSize)
	for name, body := range map[string]string{"pgbouncer.ini": ini, "users.txt": `"postgres" ""` + "\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatalf("pgtest: %v", err)
		}
	}
	argv := append(append([]string{}, asUser...), path, filepath.Join(dir, "pgbouncer.ini"))
	b.cmd = exec.CommandContext(context.Background(), argv[0], argv[1:]...)
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("pgtest: start pgbouncer: %v", err)
	}
	t.Cleanup(func() {
		// SIGTERM: runuser passes it on to pgbouncer; SIGKILL would orphan it.
		_ = b.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = b.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = b.cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		d := net.Dialer{Timeout: time.Second}
		conn, err := d.DialContext(context.Background(), "tcp", fmt.Sprintf("127.0.0.1:%d", b.port))
		if err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "pgbouncer.log"))
			t.Fatalf("pgtest: pgbouncer did not listen: %v\n%s", err, tail(string(log), 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return b, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", b.port, topologyDB)
}

// ownedDir makes a temporary directory that the server's user owns,
// removed when t ends, and the command prefix that runs as that user.
func ownedDir(t testing.TB, pattern string) (string, []string) {
	t.Helper()
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if os.Geteuid() != 0 {
		return dir, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatal("pgtest: running as root, but there is no postgres user to run the servers as (install the postgresql package)")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	if p, err := exec.LookPath("runuser"); err == nil {
		return dir, []string{p, "-u", "postgres", "--"}
	}
	return dir, []string{"sudo", "-u", "postgres"}
}

func pgBin() (string, error) {
	if d := os.Getenv(EnvPGBin); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) < versionOf(dirs[j]) })
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "pg_basebackup")); err == nil {
			return dirs[i], nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("PostgreSQL's server binaries (initdb, pg_ctl, pg_basebackup) are missing: install the postgresql package (scripts/ensure-postgres.sh does) or set " + EnvPGBin)
}

func versionOf(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// freePort returns a TCP port on 127.0.0.1 that nothing listens on now.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
