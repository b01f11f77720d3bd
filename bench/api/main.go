// Command api is the benchmark helper for bench/api.sh:
//
//	api ceiling -addr 127.0.0.1:18181 -body page.json
//	    a minimal Echo server answering GET /characters with the given
//	    pre-encoded bytes: the ceiling the real API is measured against.
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
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rickmorty/rickmorty/pkg/character"
	"github.com/rickmorty/rickmorty/pkg/postgres"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: api ceiling|floor|pgbench-sql|distinct [flags]")
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
	fs.Parse(args) //nolint:errcheck // ExitOnError
	body, err := os.ReadFile(*bodyFile)
	if err != nil {
		return err
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.GET("/characters", func(c echo.Context) error {
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
