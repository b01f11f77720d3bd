package postgres

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
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
type Store struct {
	pool     *pgxpool.Pool
	duration *prometheus.HistogramVec
}

// NewStore returns a Store over pool and registers its query duration
// histogram with reg (nil skips registration, for tests).
func NewStore(pool *pgxpool.Pool, reg prometheus.Registerer) *Store {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: telemetry.Namespace,
		Subsystem: "db",
		Name:      "query_duration_seconds",
		Help:      "Duration of the API's database queries, by query.",
		Buckets:   []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"query"})
	if reg != nil {
		reg.MustRegister(h)
	}
	return &Store{pool: pool, duration: h}
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

// listSQL holds one statement per sort and order, built once, so pgx's
// statement cache prepares each only once per connection.
var listSQL = buildListSQL()

func buildListSQL() map[string]string {
	m := make(map[string]string, len(sortColumns)*len(sortDirections))
	for sort, col := range sortColumns {
		for order, dir := range sortDirections {
			m[sort+" "+order] = listStatement(col, dir)
		}
	}
	return m
}

// listStatement reads the data version, the total count and one page in one
// statement. The LEFT JOIN keeps one row (with an id of 0) when the page is
// empty, so the count and version still arrive for out-of-range pages.
func listStatement(col, dir string) string {
	order := col + " " + dir
	if col != "id" {
		order += ", id " + dir // ties broken by id: pages are stable and disjoint
	}
	var b strings.Builder
	fmt.Fprintf(&b, `SELECT v.version, n.total, %s
FROM data_version v
CROSS JOIN (SELECT count(*) AS total FROM characters) n
LEFT JOIN LATERAL (
	SELECT %s FROM characters ORDER BY %s LIMIT $1 OFFSET $2
) c ON true
ORDER BY %s`, selectList("c."), columns, order, prefixed("c.", order))
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
	stmt, ok := listSQL[q.Sort+" "+q.Order]
	if !ok {
		return "", nil, character.Invalid("sort", "unsupported sort %q %q", q.Sort, q.Order)
	}
	return stmt, []any{q.PageSize, q.Offset()}, nil
}

// List returns one page of characters for q, which must come from
// character.ParseListQuery.
func (s *Store) List(ctx context.Context, q character.ListQuery) (character.Page, error) {
	stmt, args, err := ListSQL(q)
	if err != nil {
		return character.Page{}, err
	}
	defer s.observe("list", time.Now())
	rows, err := s.pool.Query(ctx, stmt, args...)
	if err != nil {
		return character.Page{}, unavailable(err)
	}
	defer rows.Close()
	var (
		version int64
		total   int
		results = make([]character.Character, 0, q.PageSize)
	)
	fast := numbersBinary(rows.FieldDescriptions())
	for rows.Next() {
		var c character.Character
		var err error
		if fast {
			err = decodeListRow(rows.RawValues(), &version, &total, &c)
		} else {
			err = rows.Scan(&version, &total, &c.ID, &c.Name, &c.Status, &c.Species, &c.Type, &c.Gender,
				&c.OriginName, &c.LocationName, &c.Image, &c.URL, &c.Created)
		}
		if err != nil {
			return character.Page{}, unavailable(err)
		}
		if c.ID != 0 {
			results = append(results, c)
		}
	}
	if err := rows.Err(); err != nil {
		return character.Page{}, unavailable(err)
	}
	return character.NewPage(q, total, results, version), nil
}

// numbersBinary reports whether a list row's non-text columns come in the
// binary format decodeListRow reads (text is the same bytes in either).
func numbersBinary(fds []pgconn.FieldDescription) bool {
	if len(fds) != 13 {
		return false
	}
	for _, i := range []int{0, 1, 2, 12} {
		if fds[i].Format != pgtype.BinaryFormatCode {
			return false
		}
	}
	return true
}

// pgEpoch is where Postgres's binary timestamps count from.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// decodeListRow decodes one list row from the binary wire format (int8
// version, int8 total, int4 id, nine text fields, timestamptz created).
// Scanning column by column allocated per field; here the nine texts share
// one string, the uncached path being allocation-bound.
func decodeListRow(raw [][]byte, version *int64, total *int, c *character.Character) error {
	if len(raw) != 13 || len(raw[0]) != 8 || len(raw[1]) != 8 || len(raw[2]) != 4 || len(raw[12]) != 8 {
		return fmt.Errorf("unexpected list row shape")
	}
	*version = wireInt64(raw[0])
	*total = int(wireInt64(raw[1]))
	c.ID = int(wireInt32(raw[2]))
	n := 0
	for _, v := range raw[3:12] {
		n += len(v)
	}
	var sb strings.Builder
	sb.Grow(n)
	for _, v := range raw[3:12] {
		sb.Write(v)
	}
	all := sb.String()
	next := func(i int) string {
		s := all[:len(raw[i])]
		all = all[len(raw[i]):]
		return s
	}
	c.Name, c.Status, c.Species, c.Type, c.Gender = next(3), next(4), next(5), next(6), next(7)
	c.OriginName, c.LocationName, c.Image, c.URL = next(8), next(9), next(10), next(11)
	c.Created = pgEpoch.Add(time.Duration(wireInt64(raw[12])) * time.Microsecond)
	return nil
}

// wireInt64 decodes a Postgres int8 (or the microseconds of a timestamptz)
// from its 8-byte big-endian binary form.
func wireInt64(b []byte) int64 {
	return int64(binary.BigEndian.Uint64(b)) //nolint:gosec // two's-complement reinterpretation of the wire bits, as intended
}

// wireInt32 decodes a Postgres int4 from its 4-byte big-endian binary form.
func wireInt32(b []byte) int32 {
	return int32(binary.BigEndian.Uint32(b)) //nolint:gosec // two's-complement reinterpretation of the wire bits, as intended
}

var getSQL = `SELECT v.version, ` + selectList("c.") + `
FROM data_version v LEFT JOIN characters c ON c.id = $1`

// Get returns the character with id and the data version it was read at,
// or an ENOTFOUND error.
func (s *Store) Get(ctx context.Context, id int) (character.Character, int64, error) {
	if id < 1 || id > character.MaxID {
		return character.Character{}, 0, character.Errorf(character.ENOTFOUND, "character %d not found", id)
	}
	defer s.observe("get", time.Now())
	var (
		c       character.Character
		version int64
	)
	err := s.pool.QueryRow(ctx, getSQL, id).Scan(&version, &c.ID, &c.Name, &c.Status, &c.Species, &c.Type, &c.Gender,
		&c.OriginName, &c.LocationName, &c.Image, &c.URL, &c.Created)
	if err != nil {
		return character.Character{}, 0, unavailable(err)
	}
	if c.ID == 0 {
		return character.Character{}, version, character.Errorf(character.ENOTFOUND, "character %d not found", id)
	}
	return c, version, nil
}

// DataVersion returns the current data version.
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
