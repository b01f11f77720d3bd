package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/rickmorty/rickmorty/pkg/postgres"
)

// defaultRunsLimit is how many runs `runs` prints unless told.
const defaultRunsLimit = 20

// runsErrorWidth is how many characters of a run's error the table shows.
const runsErrorWidth = 100

// runs prints the latest ingest runs. It only reads (SELECT on ingest_runs,
// in read-only transactions), so the API's read-only role can run it.
func runs(ctx context.Context, cfg Config, jsonOut bool, limit int, stdout, stderr io.Writer) int {
	pool, err := postgres.OpenPool(ctx, cfg.DatabaseURL, postgres.PoolConfig{MaxConns: 2, AppName: "rickmorty-ingester-runs"})
	if err != nil {
		fmt.Fprintf(stderr, "runs failed: %v\n", err)
		return exitFailed
	}
	defer pool.Close()
	rs, err := postgres.NewIngests(pool).Runs(ctx, limit)
	if err != nil {
		fmt.Fprintf(stderr, "runs failed: %v\n", postgres.WithMigrateHint(err))
		return exitFailed
	}
	if jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(runsDocument(rs)); err != nil {
			fmt.Fprintf(stderr, "runs failed: write: %v\n", err)
			return exitFailed
		}
		return exitOK
	}
	writeRuns(stdout, rs)
	return exitOK
}

// writeRuns prints rs as a table, newest first.
func writeRuns(w io.Writer, rs []postgres.RunRecord) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTARTED\tDURATION\tRESULT\tPAGES\tFETCHED\tKEPT\tINSERTED\tUPDATED\tDELETED\tVERSION\tERROR")
	for _, r := range rs {
		version := "-"
		if r.DataVersion != nil {
			version = strconv.FormatInt(*r.DataVersion, 10)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n",
			r.ID, r.StartedAt.UTC().Format(time.RFC3339), r.Duration.Round(time.Millisecond), r.Result,
			r.Pages, r.Fetched, r.Kept, r.Inserted, r.Updated, r.Deleted, version, oneLine(r.Error, runsErrorWidth))
	}
	_ = tw.Flush() // w's errors are the caller's to see; there is no one to tell here
}

// oneLine is the first line of s with control characters replaced, cut to
// width characters with "…".
func oneLine(s string, width int) string {
	s, _, cut := strings.Cut(s, "\n")
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, strings.TrimSpace(s))
	if cut || utf8.RuneCountInString(s) > width {
		runes := []rune(s)
		if len(runes) > width-1 {
			runes = runes[:width-1]
		}
		return string(runes) + "…"
	}
	return s
}

// The --json document; its shape is docs/schemas/runs.schema.json (checked by the
// tests). Errors are given whole.
type runsDoc struct {
	Runs []runDoc `json:"runs"`
}

type runDoc struct {
	ID              int64      `json:"id"`
	StartedAt       time.Time  `json:"started_at"`
	FinishedAt      *time.Time `json:"finished_at"`
	DurationSeconds float64    `json:"duration_seconds"`
	Result          string     `json:"result"`
	Pages           int        `json:"pages"`
	Fetched         int        `json:"fetched"`
	Kept            int        `json:"kept"`
	Inserted        int        `json:"inserted"`
	Updated         int        `json:"updated"`
	Deleted         int        `json:"deleted"`
	DataVersion     *int64     `json:"data_version"`
	Error           string     `json:"error"`
}

func runsDocument(rs []postgres.RunRecord) runsDoc {
	d := runsDoc{Runs: make([]runDoc, 0, len(rs))}
	for _, r := range rs {
		var finished *time.Time
		if r.FinishedAt != nil {
			f := r.FinishedAt.UTC()
			finished = &f
		}
		d.Runs = append(d.Runs, runDoc{
			ID: r.ID, StartedAt: r.StartedAt.UTC(), FinishedAt: finished, DurationSeconds: r.Duration.Seconds(),
			Result: r.Result, Pages: r.Pages, Fetched: r.Fetched, Kept: r.Kept,
			Inserted: r.Inserted, Updated: r.Updated, Deleted: r.Deleted, DataVersion: r.DataVersion, Error: r.Error,
		})
	}
	return d
}
