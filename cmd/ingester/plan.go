package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"unicode"

	"go.opentelemetry.io/otel/trace"

	"github.com/rickmorty/rickmorty/pkg/ingest"
	"github.com/rickmorty/rickmorty/pkg/postgres"
)

// defaultPlanLimit is how many change lines `plan` lists unless told.
const defaultPlanLimit = 50

type planOutput struct {
	json  bool
	limit int // change lines listed in text; 0: all
}

// plan runs `ingester plan`: the crawl and filter of `once`, compared with
// the stored data, printed; it takes no lock and writes nothing.
func plan(ctx context.Context, cfg Config, tp trace.TracerProvider, log *slog.Logger, out planOutput, stdout, stderr io.Writer) int {
	pool, err := postgres.OpenPool(ctx, cfg.DatabaseURL, postgres.PoolConfig{
		MaxConns: 2, AppName: "rickmorty-ingester-plan", TracerProvider: tp,
	})
	if err != nil {
		fmt.Fprintf(stderr, "plan failed: %v\n", err)
		return exitFailed
	}
	defer pool.Close()
	p, err := newRunner(cfg, pool, tp, log, nil).Plan(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "plan failed: %v\n", postgres.WithMigrateHint(err))
		return exitFailed
	}
	if out.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(planDocument(p)); err != nil {
			fmt.Fprintf(stderr, "plan failed: write: %v\n", err)
			return exitFailed
		}
	} else {
		writePlan(stdout, p, out.limit)
	}
	fmt.Fprintf(stderr, "plan: compared a crawl of %d pages (%d characters fetched, %d kept) with the %d stored at data version %d; nothing was written\n",
		p.Pages, p.Fetched, p.Kept, p.Stored, p.DataVersion)
	if p.Refused() {
		fmt.Fprintf(stderr, "plan: a sync now would be refused: %v\n", p.Guard)
		return exitRefused
	}
	return exitOK
}

// planSummary is the first line of the text form.
func planSummary(p ingest.Plan) string {
	return fmt.Sprintf("plan: insert=%d update=%d delete=%d unchanged=%d guard=%s",
		len(p.Inserts), len(p.Updates), len(p.Deletes), p.Unchanged, guardWord(p))
}

func guardWord(p ingest.Plan) string {
	if p.Refused() {
		return "refused"
	}
	return "ok"
}

// planLines are the text form's change lines: deletions first (what the
// guard weighs), then updates (a line per changed field), then insertions,
// each by id.
func planLines(p ingest.Plan) []string {
	var lines []string
	for _, d := range p.Deletes {
		lines = append(lines, fmt.Sprintf("- %d %s (reason: %s)", d.ID, printable(d.Name), strings.Join(d.Reasons, ", ")))
	}
	for _, u := range p.Updates {
		for _, c := range u.Changes {
			lines = append(lines, fmt.Sprintf("~ %d %s: %s %s -> %s", u.ID, printable(u.Name), c.Field, showValue(c.Old, c.New), showValue(c.New, c.Old)))
		}
	}
	for _, i := range p.Inserts {
		lines = append(lines, fmt.Sprintf("+ %d %s (%s)", i.ID, printable(i.Name), printable(i.Origin)))
	}
	return lines
}

// writePlan prints the summary line and at most limit change lines (0: all),
// then "... and N more" for the rest.
func writePlan(w io.Writer, p ingest.Plan, limit int) {
	fmt.Fprintln(w, planSummary(p))
	lines := planLines(p)
	shown := lines
	if limit > 0 && len(lines) > limit {
		shown = lines[:limit]
	}
	for _, l := range shown {
		fmt.Fprintln(w, l)
	}
	if rest := len(lines) - len(shown); rest > 0 {
		fmt.Fprintf(w, "... and %d more (--limit 0 lists them all)\n", rest)
	}
}

// showValue renders a changed field's value on one line: strings quoted
// (an empty or padded value stays visible, control characters escaped),
// episode lists by their length.
func showValue(v, other any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case []string:
		s := fmt.Sprintf("%d episodes", len(x))
		if o, ok := other.([]string); ok && len(o) == len(x) {
			s += " (other URLs)"
		}
		return s
	default:
		return fmt.Sprint(v)
	}
}

// printable keeps an upstream string on one line: as it is when every rune
// prints, quoted and escaped otherwise.
func printable(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0 {
		return s
	}
	return strconv.Quote(s)
}

// The --json document; its shape is docs/schemas/plan.schema.json (checked by the
// tests). Every change is listed, whatever --limit says.
type planDoc struct {
	Insert         int          `json:"insert"`
	Update         int          `json:"update"`
	Delete         int          `json:"delete"`
	Unchanged      int          `json:"unchanged"`
	Guard          string       `json:"guard"`                  // "ok" or "refused"
	GuardReason    string       `json:"guard_reason,omitempty"` // why, when refused
	MaxDeleteRatio float64      `json:"max_delete_ratio"`
	Pages          int          `json:"pages"`
	Fetched        int          `json:"fetched"`
	Kept           int          `json:"kept"`
	Stored         int          `json:"stored"`
	DataVersion    int64        `json:"data_version"`
	Inserts        []planInsert `json:"inserts"`
	Updates        []planUpdate `json:"updates"`
	Deletes        []planDelete `json:"deletes"`
}

type planInsert struct {
	ID     int    `json:"id"`
	Name   string `json:"name"`
	Origin string `json:"origin"`
}

type planUpdate struct {
	ID      int          `json:"id"`
	Name    string       `json:"name"`
	Changes []planChange `json:"changes"`
}

type planChange struct {
	Field string `json:"field"`
	Old   any    `json:"old"`
	New   any    `json:"new"`
}

type planDelete struct {
	ID      int      `json:"id"`
	Name    string   `json:"name"`
	Reasons []string `json:"reasons"`
}

func planDocument(p ingest.Plan) planDoc {
	d := planDoc{
		Insert: len(p.Inserts), Update: len(p.Updates), Delete: len(p.Deletes), Unchanged: p.Unchanged,
		Guard: guardWord(p), MaxDeleteRatio: p.MaxDeleteRatio,
		Pages: p.Pages, Fetched: p.Fetched, Kept: p.Kept, Stored: p.Stored, DataVersion: p.DataVersion,
		Inserts: make([]planInsert, 0, len(p.Inserts)),
		Updates: make([]planUpdate, 0, len(p.Updates)),
		Deletes: make([]planDelete, 0, len(p.Deletes)),
	}
	if p.Guard != nil {
		d.GuardReason = p.Guard.Error()
	}
	for _, i := range p.Inserts {
		d.Inserts = append(d.Inserts, planInsert{ID: i.ID, Name: i.Name, Origin: i.Origin})
	}
	for _, u := range p.Updates {
		pu := planUpdate{ID: u.ID, Name: u.Name, Changes: make([]planChange, 0, len(u.Changes))}
		for _, c := range u.Changes {
			pu.Changes = append(pu.Changes, planChange{Field: c.Field, Old: c.Old, New: c.New})
		}
		d.Updates = append(d.Updates, pu)
	}
	for _, x := range p.Deletes {
		d.Deletes = append(d.Deletes, planDelete{ID: x.ID, Name: x.Name, Reasons: x.Reasons})
	}
	return d
}
