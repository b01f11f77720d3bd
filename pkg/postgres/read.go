package postgres

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rickmorty/rickmorty/pkg/character"
	"github.com/rickmorty/rickmorty/pkg/telemetry"
)

// Store answers the API's read-only queries. Every method reads in a single
// statement, so the data version it returns comes from the same snapshot as
// the rows (the ETag always matches the body) at one round trip per call.
//
// List and Get may go to a read replica (WithReplica). The primary stays the
// truth: a replica answer older than the caller's minimum version (a lagging
// standby) is read again on the primary, and a replica that fails sends reads
// to the primary until it answers again.
type Store struct {
	pool       *pgxpool.Pool // the primary
	replica    *replica      // nil: every read goes to the primary
	minVersion func() int64
	duration   *prometheus.HistogramVec
	reads      *prometheus.CounterVec
	fallbacks  *prometheus.CounterVec
}

// StoreOption configures a Store.
type StoreOption func(*Store)

// WithReplica sends List and Get to pool (a hot standby, or a pooler in front
// of replicas) whenever it answers, and to the primary otherwise.
func WithReplica(pool *pgxpool.Pool) StoreOption {
	return func(s *Store) { s.replica = &replica{pool: pool} }
}

// WithMinVersion gives the store the lowest data version a List or Get may
// answer with: the highest this process has already served (monotonic
// reads). A replica answer below it is read again on the primary.
func WithMinVersion(floor func() int64) StoreOption {
	return func(s *Store) { s.minVersion = floor }
}

// NewStore returns a Store over the primary pool and registers its metrics
// with reg (nil skips registration, for tests).
func NewStore(pool *pgxpool.Pool, reg prometheus.Registerer, opts ...StoreOption) *Store {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: telemetry.Namespace,
		Subsystem: "db",
		Name:      "query_duration_seconds",
		Help:      "Duration of the API's database queries, by query.",
		Buckets:   []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"query"})
	s := &Store{
		pool:       pool,
		minVersion: func() int64 { return 0 },
		duration:   h,
		reads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: telemetry.Namespace, Subsystem: "db", Name: "reads_total",
			Help: "List and item reads answered, by the server that answered them (primary or replica).",
		}, []string{"target"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: telemetry.Namespace, Subsystem: "db", Name: "replica_fallbacks_total",
			Help: "Reads sent to the primary instead of the replica: it lagged behind a version already served (lag), failed (error), or was resting after a failure (down).",
		}, []string{"reason"}),
	}
	for _, o := range opts {
		o(s)
	}
	for _, t := range []string{targetPrimary, targetReplica} {
		s.reads.WithLabelValues(t)
	}
	for _, r := range []string{fallbackLag, fallbackError, fallbackDown} {
		s.fallbacks.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(h, s.reads, s.fallbacks)
	}
	return s
}

const (
	targetPrimary = "primary"
	targetReplica = "replica"
	fallbackLag   = "lag"
	fallbackError = "error"
	fallbackDown  = "down"
)

// querier is what a read runs on: the primary's or the replica's pool.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// read runs one read (which returns the data version it saw) where it may
// be answered: on the replica when that is up and current enough, else on
// the primary. The primary's answer is the truth: one below the minimum is
// read once more (a read that began before a commit the process has since
// heard of), and returned as it is if still below (the database went back:
// a restore or a failover to an older copy), for the caller to follow.
func (s *Store) read(ctx context.Context, fn func(context.Context, querier) (int64, error)) error {
	floor := s.minVersion()
	if r := s.replica; r != nil {
		if r.usable() {
			v, err := fn(ctx, r.pool)
			switch {
			case err == nil && v >= floor:
				r.succeeded()
				s.reads.WithLabelValues(targetReplica).Inc()
				return nil
			case err == nil:
				r.succeeded()
				s.fallbacks.WithLabelValues(fallbackLag).Inc()
			case ctx.Err() != nil:
				return err // the caller gave up; nothing is wrong with the replica
			default:
				r.failed()
				s.fallbacks.WithLabelValues(fallbackError).Inc()
			}
		} else {
			s.fallbacks.WithLabelValues(fallbackDown).Inc()
		}
	}
	v, err := fn(ctx, s.pool)
	if err == nil && v < floor {
		_, err = fn(ctx, s.pool)
	}
	if err == nil {
		s.reads.WithLabelValues(targetPrimary).Inc()
	}
	return err
}

// replica tracks whether the read replica may be asked. After a failure it
// rests, for a backoff that doubles while it keeps failing; then one read at
// a time probes it while the others go to the primary.
type replica struct {
	pool      *pgxpool.Pool
	mu        sync.Mutex
	downUntil time.Time // zero: up
	backoff   time.Duration
	probing   bool
}

const (
	replicaMinBackoff = 250 * time.Millisecond
	replicaMaxBackoff = 10 * time.Second
)

func (r *replica) usable() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.downUntil.IsZero() {
		return true
	}
	if r.probing || time.Now().Before(r.downUntil) {
		return false
	}
	r.probing = true
	return true
}

func (r *replica) succeeded() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.downUntil, r.backoff, r.probing = time.Time{}, 0, false
}

func (r *replica) failed() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.backoff = min(max(2*r.backoff, replicaMinBackoff), replicaMaxBackoff)
	r.downUntil, r.probing = time.Now().Add(r.backoff), false
}

// ReplicaUp reports whether the replica is taking reads (true when there is
// none).
func (s *Store) ReplicaUp() bool {
	if s.replica == nil {
		return true
	}
	s.replica.mu.Lock()
	defer s.replica.mu.Unlock()
	return s.replica.downUntil.IsZero()
}

// sortColumns is the second whitelist (the first is character.ParseListQuery):
// only these constant column names are ever spliced into SQL.
var sortColumns = map[string]string{
	character.SortID:      "id",
	character.SortName:    "name",
	character.SortCreated: "created",
}

var sortDirections = map[string]string{
	character.OrderAsc:  "ASC",
	character.OrderDesc: "DESC",
}

// listSQL holds one statement per sort, order and set of filters given
// (filterSets of them), built once, so pgx's statement cache prepares each
// only once per connection and every statement names only the conditions
// it uses: each filter can use its index with a generic plan too.
var listSQL = buildListSQL()

func buildListSQL() map[string]*[filterSets]string {
	m := make(map[string]*[filterSets]string, len(sortColumns)*len(sortDirections))
	for sort, col := range sortColumns {
		for order, dir := range sortDirections {
			var stmts [filterSets]string
			for set := range stmts {
				stmts[set] = listStatement(col, dir, set)
			}
			m[sort+" "+order] = &stmts
		}
	}
	return m
}

// listFilters are the list filters' conditions, in character.Filter's field
// order; a statement's set of filters is a bit mask over them. The text
// filters match a case-insensitive substring (arguments built by
// filterArgs), served by the trigram indexes of migration 4.
var listFilters = [...]string{
	"name ILIKE $%d",
	"origin_name ILIKE $%d",
	"location_name ILIKE $%d",
	"lower(gender) = $%d",
}

const (
	filterSets  = 1 << len(listFilters)
	textFilters = 0b0111 // name, origin and location: the trigram-indexed ones
)

// filterArgs returns the bit mask of f's filters and their arguments, in
// listFilters' order.
func filterArgs(f character.Filter) (set int, args []any) {
	for i, v := range [...]string{f.Name, f.Origin, f.Location} {
		if v != "" {
			set |= 1 << i
			args = append(args, "%"+likeEscaper.Replace(v)+"%")
		}
	}
	if f.Gender != "" {
		set |= 1 << 3
		args = append(args, f.Gender)
	}
	return set, args
}

// likeEscaper makes LIKE's wildcards and its escape character (a
// backslash, by default) match themselves.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// listStatement reads the data version, when it was committed, the total
// count and one page in one statement. The LEFT JOIN keeps one row (with an
// id of 0) when the page is empty, so the count and version still arrive
// for out-of-range pages. $1 and $2 are the limit and offset; the filters
// of set follow from $3.
func listStatement(col, dir string, set int) string {
	order := col + " " + dir
	if col != "id" {
		order += ", id " + dir // ties broken by id: pages are stable and disjoint
	}
	var conds []string
	for i, cond := range listFilters {
		if set&(1<<i) != 0 {
			conds = append(conds, fmt.Sprintf(cond, 3+len(conds)))
		}
	}
	var b strings.Builder
	if set&textFilters == 0 {
		// No text filter: the count reads the table (or an index) once and
		// the page walks the sort index, stopping after the page; gathering
		// every match first, as below, would only cost more.
		where := ""
		if len(conds) > 0 {
			where = " WHERE " + strings.Join(conds, " AND ")
		}
		fmt.Fprintf(&b, `SELECT v.version, v.updated_at, n.total, %s
FROM data_version v
CROSS JOIN (SELECT count(*) AS total FROM characters%s) n
LEFT JOIN LATERAL (
	SELECT %s FROM characters%s ORDER BY %s LIMIT $1 OFFSET $2
) c ON true
ORDER BY %s`, selectList("c."), where, columns, where, order, prefixed("c.", order))
		return b.String()
	}
	// A text filter: the matching rows are found once (the trigram index
	// scan and its recheck, the expensive part) and both counted and paged
	// from there, rather than searched for twice; the page's columns are
	// then read by id.
	fmt.Fprintf(&b, `WITH m AS MATERIALIZED (
	SELECT id, name, created FROM characters WHERE %s
)
SELECT v.version, v.updated_at, n.total, %s
FROM data_version v
CROSS JOIN (SELECT count(*) AS total FROM m) n
LEFT JOIN LATERAL (
	SELECT %s FROM characters WHERE id IN (SELECT id FROM m ORDER BY %s LIMIT $1 OFFSET $2)
) c ON true
ORDER BY %s`, strings.Join(conds, " AND "), selectList("c."), columns, order, prefixed("c.", order))
	return b.String()
}

// columns are the fields the API exposes; episodes and the origin/location
// URLs stay in the database because no response carries them.
const columns = "id, name, status, species, type, gender, origin_name, location_name, image, url, created"

// selectList coalesces the lateral columns so an empty page scans into
// plain values without a pointer per field.
func selectList(p string) string {
	return "coalesce(" + p + "id, 0), coalesce(" + p + "name, ''), coalesce(" + p + "status, ''), " +
		"coalesce(" + p + "species, ''), coalesce(" + p + "type, ''), coalesce(" + p + "gender, ''), " +
		"coalesce(" + p + "origin_name, ''), coalesce(" + p + "location_name, ''), coalesce(" + p + "image, ''), " +
		"coalesce(" + p + "url, ''), coalesce(" + p + "created, 'epoch')"
}

func prefixed(p, order string) string {
	parts := strings.Split(order, ", ")
	for i := range parts {
		parts[i] = p + parts[i]
	}
	return strings.Join(parts, ", ")
}

// ListSQL returns the statement List runs for q with its arguments, so the
// benchmark can hand pgbench exactly the same query.
func ListSQL(q character.ListQuery) (string, []any, error) {
	stmts, ok := listSQL[q.Sort+" "+q.Order]
	if !ok {
		return "", nil, character.Invalid("sort", "unsupported sort %q %q", q.Sort, q.Order)
	}
	set, filters := filterArgs(q.Filter)
	return stmts[set], append([]any{q.PageSize, q.Offset()}, filters...), nil
}

// List returns one page of characters for q, which must come from
// character.ParseListQuery.
func (s *Store) List(ctx context.Context, q character.ListQuery) (character.Page, error) {
	stmt, args, err := ListSQL(q)
	if err != nil {
		return character.Page{}, err
	}
	defer s.observe("list", time.Now())
	var (
		snap    character.Snapshot
		total   int
		results = make([]character.Character, 0, q.PageSize)
	)
	err = s.read(ctx, func(ctx context.Context, db querier) (int64, error) {
		results = results[:0]
		rows, err := db.Query(ctx, stmt, args...)
		if err != nil {
			return 0, err
		}
		defer rows.Close()
		fast := numbersBinary(rows.FieldDescriptions())
		for rows.Next() {
			var c character.Character
			var err error
			if fast {
				err = decodeListRow(rows.RawValues(), &snap, &total, &c)
			} else {
				err = rows.Scan(&snap.Version, &snap.Modified, &total, &c.ID, &c.Name, &c.Status, &c.Species, &c.Type, &c.Gender,
					&c.OriginName, &c.LocationName, &c.Image, &c.URL, &c.Created)
			}
			if err != nil {
				return 0, err
			}
			if c.ID != 0 {
				results = append(results, c)
			}
		}
		return snap.Version, rows.Err()
	})
	if err != nil {
		return character.Page{}, unavailable(err)
	}
	return character.NewPage(q, total, results, snap), nil
}

// numbersBinary reports whether a list row's non-text columns come in the
// binary format decodeListRow reads (text is the same bytes in either).
func numbersBinary(fds []pgconn.FieldDescription) bool {
	if len(fds) != 14 {
		return false
	}
	for _, i := range []int{0, 1, 2, 3, 13} {
		if fds[i].Format != pgtype.BinaryFormatCode {
			return false
		}
	}
	return true
}

// pgEpoch is where Postgres's binary timestamps count from.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// decodeListRow decodes one list row from the binary wire format (int8
// version, timestamptz updated_at, int8 total, int8 id, nine text fields,
// timestamptz created). Scanning column by column allocated per field; here
// the nine texts share one string, the uncached path being allocation-bound.
func decodeListRow(raw [][]byte, snap *character.Snapshot, total *int, c *character.Character) error {
	if len(raw) != 14 || len(raw[0]) != 8 || len(raw[1]) != 8 || len(raw[2]) != 8 || len(raw[3]) != 8 || len(raw[13]) != 8 {
		return fmt.Errorf("unexpected list row shape")
	}
	snap.Version = wireInt64(raw[0])
	snap.Modified = wireTime(raw[1])
	*total = int(wireInt64(raw[2]))
	c.ID = int(wireInt64(raw[3]))
	texts := raw[4:13]
	n := 0
	for _, v := range texts {
		n += len(v)
	}
	var sb strings.Builder
	sb.Grow(n)
	for _, v := range texts {
		sb.Write(v)
	}
	all := sb.String()
	next := func(i int) string {
		s := all[:len(texts[i])]
		all = all[len(texts[i]):]
		return s
	}
	c.Name, c.Status, c.Species, c.Type, c.Gender = next(0), next(1), next(2), next(3), next(4)
	c.OriginName, c.LocationName, c.Image, c.URL = next(5), next(6), next(7), next(8)
	c.Created = wireTime(raw[13])
	return nil
}

// wireTime decodes a Postgres timestamptz from its binary form (a count of
// microseconds since pgEpoch).
func wireTime(b []byte) time.Time {
	return pgEpoch.Add(time.Duration(wireInt64(b)) * time.Microsecond)
}

// wireInt64 decodes a Postgres int8 (or the microseconds of a timestamptz)
// from its 8-byte big-endian binary form.
func wireInt64(b []byte) int64 {
	return int64(binary.BigEndian.Uint64(b)) //nolint:gosec // two's-complement reinterpretation of the wire bits, as intended
}

var getSQL = `SELECT v.version, v.updated_at, ` + selectList("c.") + `
FROM data_version v LEFT JOIN characters c ON c.id = $1`

// Get returns the character with id and the snapshot it was read at, or
// an ENOTFOUND error (with the snapshot that lacks it).
func (s *Store) Get(ctx context.Context, id int) (character.Character, character.Snapshot, error) {
	if id < 1 || id > character.MaxID {
		return character.Character{}, character.Snapshot{}, character.Errorf(character.ENOTFOUND, "character %d not found", id)
	}
	defer s.observe("get", time.Now())
	var (
		c    character.Character
		snap character.Snapshot
	)
	err := s.read(ctx, func(ctx context.Context, db querier) (int64, error) {
		c = character.Character{}
		err := db.QueryRow(ctx, getSQL, id).Scan(&snap.Version, &snap.Modified, &c.ID, &c.Name, &c.Status, &c.Species, &c.Type, &c.Gender,
			&c.OriginName, &c.LocationName, &c.Image, &c.URL, &c.Created)
		return snap.Version, err
	})
	if err != nil {
		return character.Character{}, character.Snapshot{}, unavailable(err)
	}
	if c.ID == 0 {
		return character.Character{}, snap, character.Errorf(character.ENOTFOUND, "character %d not found", id)
	}
	return c, snap, nil
}

// DataVersion returns the data version the primary holds now.
func (s *Store) DataVersion(ctx context.Context) (int64, error) {
	defer s.observe("data_version", time.Now())
	var v int64
	if err := s.pool.QueryRow(ctx, "SELECT version FROM data_version").Scan(&v); err != nil {
		return 0, unavailable(err)
	}
	return v, nil
}

// Stats is what the deep health check reports about the data.
type Stats struct {
	CharacterCount int
	DataVersion    int64
	// LastSuccess is when the last successful ingest finished; zero if none has.
	LastSuccess time.Time
	// LastSuccessAge is measured on the database's clock, so a skewed pod
	// clock cannot make the data look fresher or staler than it is.
	LastSuccessAge time.Duration
}

// Stats reads the character count, data version and last successful ingest.
func (s *Store) Stats(ctx context.Context) (Stats, error) {
	defer s.observe("stats", time.Now())
	var (
		st   Stats
		last *time.Time
		age  *float64
	)
	err := s.pool.QueryRow(ctx, `SELECT
	(SELECT count(*) FROM characters),
	(SELECT version FROM data_version),
	r.finished_at,
	extract(epoch FROM now() - r.finished_at)::float8
FROM (SELECT max(finished_at) AS finished_at FROM ingest_runs WHERE result = 'success') r`).
		Scan(&st.CharacterCount, &st.DataVersion, &last, &age)
	if err != nil {
		return Stats{}, unavailable(err)
	}
	if last != nil && age != nil {
		st.LastSuccess = *last
		st.LastSuccessAge = time.Duration(max(*age, 0) * float64(time.Second))
	}
	return st, nil
}

// SchemaVersion returns golang-migrate's recorded version and dirty flag.
func (s *Store) SchemaVersion(ctx context.Context) (version int64, dirty bool, err error) {
	defer s.observe("schema_version", time.Now())
	err = s.pool.QueryRow(ctx, "SELECT version, dirty FROM schema_migrations").Scan(&version, &dirty)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, character.Errorf(character.EUNAVAILABLE, "the database has no schema version yet")
	}
	if err != nil {
		return 0, false, unavailable(err)
	}
	return version, dirty, nil
}

// Ping checks that a connection can be had and answers.
func (s *Store) Ping(ctx context.Context) error {
	defer s.observe("ping", time.Now())
	if err := s.pool.Ping(ctx); err != nil {
		return unavailable(err)
	}
	return nil
}

func (s *Store) observe(query string, start time.Time) {
	s.duration.WithLabelValues(query).Observe(time.Since(start).Seconds())
}

// unavailable wraps a database failure: clients learn only that the
// database could not answer, logs get the cause.
func unavailable(err error) error {
	return &character.Error{Code: character.EUNAVAILABLE, Message: "the database is unavailable; try again later", Err: err}
}
