// Command api is the benchmark helper for bench/api.sh:
//
//	api ceiling -addr 127.0.0.1:18181 -body page.json [-encoding br]
//	    a minimal Echo server answering GET /characters with the given
//	    pre-encoded (and, with -encoding, pre-compressed) bytes: the
//	    ceiling the real API is measured against.
//	api floor -addr 127.0.0.1:18183 -db URL
//	    the least a Go HTTP service can do per uncached request: net/http,
//	    the API's SELECT through pgxpool, the raw column bytes written
//	    back unencoded. Bounds what any uncached Go service reaches here.
//	api pgbench-sql
//	    prints a pgbench script running exactly the SELECT the API runs
//	    for GET /characters (default query).
//	api distinct -base http://127.0.0.1:18180 -n 100000 -c 16 -pid PID
//	    sends n requests with distinct query strings and reports the API
//	    process's resident memory (VmRSS) before and after.
//	api explain -db URL -query 'name=smith&sort=name'
//	    runs EXPLAIN (ANALYZE, BUFFERS) on the statement the API runs for
//	    GET /characters?<query>, with its arguments, and prints the plan
//	    (bench/filters.sh).
//	api converge -urls http://127.0.0.1:1,http://127.0.0.1:2 -path /characters -- CMD ARGS...
//	    polls every pod's ETag for path (every -interval) while it runs
//	    CMD (an ingest), and reports when each pod first answered with a
//	    new ETag, from the command's start and from its return, and the
//	    wall-clock time the last pod switched (bench/scaling.sh).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"

	"github.com/rickmorty/rickmorty/pkg/character"
	"github.com/rickmorty/rickmorty/pkg/postgres"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: api ceiling|floor|pgbench-sql|distinct|converge|explain [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "ceiling":
		err = ceiling(os.Args[2:])
	case "pgbench-sql":
		err = pgbenchSQL()
	case "floor":
		err = floor(os.Args[2:])
	case "distinct":
		distinct(os.Args[2:])
	case "converge":
		err = converge(os.Args[2:])
	case "explain":
		err = explain(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "api:", err)
		os.Exit(1)
	}
}

func ceiling(args []string) error {
	fs := flag.NewFlagSet("ceiling", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:18181", "listen address")
	bodyFile := fs.String("body", "", "file with the response body")
	encoding := fs.String("encoding", "", "the body's Content-Encoding (br, zstd, gzip), sent with Vary: Accept-Encoding")
	fs.Parse(args) //nolint:errcheck // ExitOnError
	body, err := os.ReadFile(*bodyFile)
	if err != nil {
		return err
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.GET("/characters", func(c echo.Context) error {
		if *encoding != "" {
			c.Response().Header().Set("Content-Encoding", *encoding)
			c.Response().Header().Set("Vary", "Accept-Encoding")
		}
		return c.Blob(http.StatusOK, "application/json", body)
	})
	return e.Start(*addr)
}

func pgbenchSQL() error {
	q := character.DefaultListQuery()
	stmt, args, err := postgres.ListSQL(q)
	if err != nil {
		return err
	}
	for i, a := range args {
		fmt.Printf("\\set p%d %v\n", i+1, a)
	}
	stmt = regexp.MustCompile(`\$(\d+)`).ReplaceAllString(stmt, ":p$1")
	fmt.Println(strings.Join(strings.Fields(stmt), " ") + ";")
	return nil
}

func distinct(args []string) {
	fs := flag.NewFlagSet("distinct", flag.ExitOnError)
	base := fs.String("base", "http://127.0.0.1:18180", "API base URL")
	n := fs.Int("n", 100_000, "distinct query strings to send")
	conc := fs.Int("c", 16, "concurrent clients")
	pid := fs.Int("pid", 0, "API process id, for VmRSS")
	fs.Parse(args) //nolint:errcheck // ExitOnError
	sorts := []string{"id", "name", "created"}
	orders := []string{"asc", "desc"}
	before := rss(*pid)
	var next, failed atomic.Int64
	statuses := sync.Map{}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *conc}, Timeout: 10 * time.Second}
	start := time.Now()
	var wg sync.WaitGroup
	for range *conc {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= *n {
					return
				}
				// Every query string differs: varied sort, order, page and
				// page size, plus a unique ignored parameter.
				path := fmt.Sprintf("/characters?sort=%s&order=%s&page=%d&page_size=%d&nonce=%d",
					sorts[i%3], orders[(i/3)%2], 1+i/600, 1+i%100, i)
				req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, *base+path, nil)
				if err != nil {
					failed.Add(1)
					continue
				}
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body) //nolint:errcheck // draining
				resp.Body.Close()
				v, _ := statuses.LoadOrStore(resp.StatusCode, new(atomic.Int64))
				v.(*atomic.Int64).Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	after := rss(*pid)
	fmt.Printf("distinct query strings: %d in %s (%.0f req/s), transport errors %d\n", *n, elapsed.Round(time.Millisecond), float64(*n)/elapsed.Seconds(), failed.Load())
	statuses.Range(func(k, v any) bool {
		fmt.Printf("  status %d: %d\n", k, v.(*atomic.Int64).Load())
		return true
	})
	fmt.Printf("VmRSS before: %.1f MiB, after: %.1f MiB\n", float64(before)/1024, float64(after)/1024)
}

// rss returns VmRSS of pid in KiB, or 0.
func rss(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			kb, _ := strconv.Atoi(f[0])
			return kb
		}
	}
	return 0
}

func floor(args []string) error {
	fs := flag.NewFlagSet("floor", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:18183", "listen address")
	dbURL := fs.String("db", "", "database URL")
	conns := fs.Int("conns", 16, "pool size")
	fs.Parse(args) //nolint:errcheck // ExitOnError
	ctx := context.Background()
	pool, err := postgres.OpenPool(ctx, *dbURL, postgres.PoolConfig{MaxConns: *conns})
	if err != nil {
		return err
	}
	defer pool.Close()
	stmt, qargs, err := postgres.ListSQL(character.ListQuery{Sort: character.SortID, Order: character.OrderAsc, Page: 1, PageSize: 20})
	if err != nil {
		return err
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rows, err := pool.Query(r.Context(), stmt, qargs...)
		if err != nil {
			http.Error(w, "db", http.StatusServiceUnavailable)
			return
		}
		defer rows.Close()
		buf := make([]byte, 0, 8192)
		for rows.Next() {
			for _, v := range rows.RawValues() {
				buf = append(buf, v...)
			}
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(buf) //nolint:errcheck // benchmark
	})
	fmt.Println("floor listening on", *addr)
	return http.ListenAndServe(*addr, h) //nolint:gosec // benchmark helper on loopback
}

// converge runs an ingest command while polling each pod's ETag for one
// path, and prints when each pod first served a different ETag. Polling
// starts before the command, so a pod that had already switched when the
// command returned shows a negative time after return. Pods that still
// serve the old ETag -wait after the command are reported unchanged (what
// an ingest that changes nothing should give).
func converge(args []string) error {
	fs := flag.NewFlagSet("converge", flag.ExitOnError)
	urls := fs.String("urls", "", "comma-separated API base URLs")
	path := fs.String("path", "/characters", "path whose ETag is polled")
	interval := fs.Duration("interval", 2*time.Millisecond, "poll interval per pod")
	wait := fs.Duration("wait", 3*time.Second, "how long after the command returns to wait for every pod")
	fs.Parse(args) //nolint:errcheck // ExitOnError
	if *urls == "" || fs.NArg() == 0 {
		return fmt.Errorf("converge: want -urls and a command after --")
	}
	bases := strings.Split(*urls, ",")
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 2}}
	etagOf := func(base string) (string, error) {
		resp, err := client.Get(base + *path) //nolint:noctx // bounded by the client timeout
		if err != nil {
			return "", err
		}
		io.Copy(io.Discard, resp.Body) //nolint:errcheck // draining
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("%s%s: status %d", base, *path, resp.StatusCode)
		}
		return resp.Header.Get("ETag"), nil
	}
	old := make([]string, len(bases))
	for i, b := range bases {
		e, err := etagOf(b)
		if err != nil {
			return err
		}
		old[i] = e
	}
	type seen struct {
		at   time.Time
		etag string
	}
	got := make([]seen, len(bases))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, b := range bases {
		wg.Go(func() {
			t := time.NewTicker(*interval)
			defer t.Stop()
			for {
				if e, err := etagOf(b); err == nil && e != old[i] {
					got[i] = seen{time.Now(), e}
					return
				}
				select {
				case <-stop:
					return
				case <-t.C:
				}
			}
		})
	}
	cmd := exec.CommandContext(context.Background(), fs.Arg(0), fs.Args()[1:]...) //nolint:gosec // the benchmark's own ingest command
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	start := time.Now()
	runErr := cmd.Run()
	end := time.Now()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(*wait):
	}
	close(stop)
	<-done
	ms := func(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 1, 64) }
	changed, maxStart, maxEnd := 0, time.Duration(0), time.Duration(-1<<62)
	newTag := ""
	for i := range bases {
		if got[i].at.IsZero() {
			fmt.Printf("pod %d %s: unchanged %s\n", i+1, bases[i], old[i])
			continue
		}
		changed++
		newTag = got[i].etag
		fromStart, fromEnd := got[i].at.Sub(start), got[i].at.Sub(end)
		maxStart, maxEnd = max(maxStart, fromStart), max(maxEnd, fromEnd)
		fmt.Printf("pod %d %s: %s -> %s at +%s ms from ingest start, %s ms from its return\n",
			i+1, bases[i], old[i], got[i].etag, ms(fromStart), ms(fromEnd))
	}
	if changed == 0 {
		maxEnd = 0
	}
	// Wall-clock microseconds, for comparing with the database's commit
	// timestamp (same host clock).
	lastUnixUS := int64(0)
	if changed > 0 {
		lastUnixUS = start.Add(maxStart).UnixMicro()
	}
	fmt.Printf("converge ingest_ms=%s changed=%d/%d old=%s new=%s max_from_start_ms=%s max_from_return_ms=%s last_switch_unix_us=%d\n",
		ms(end.Sub(start)), changed, len(bases), old[0], newTag, ms(maxStart), ms(maxEnd), lastUnixUS)
	if runErr != nil {
		return fmt.Errorf("converge: %s: %w", fs.Arg(0), runErr)
	}
	return nil
}

func explain(args []string) error {
	fs := flag.NewFlagSet("explain", flag.ExitOnError)
	dbURL := fs.String("db", "", "database URL")
	query := fs.String("query", "", "the query string of GET /characters")
	fs.Parse(args) //nolint:errcheck // ExitOnError
	vals, err := url.ParseQuery(*query)
	if err != nil {
		return err
	}
	q, err := character.ParseListQuery(vals)
	if err != nil {
		return err
	}
	stmt, qargs, err := postgres.ListSQL(q)
	if err != nil {
		return err
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+stmt, qargs...)
	if err != nil {
		return err
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	fmt.Println(strings.Join(lines, "\n"))
	return nil
}
