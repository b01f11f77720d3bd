package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rickmorty/rickmorty/pkg/character"
	"github.com/rickmorty/rickmorty/pkg/pgtest"
	"github.com/rickmorty/rickmorty/pkg/postgres"
)

func synthetic(n int) []character.Character {
	chars := make([]character.Character, n)
	created := time.Date(2017, 11, 4, 18, 48, 46, 250e6, time.UTC)
	for i := range chars {
		id := i + 1
		chars[i] = character.Character{
			ID: id, Name: fmt.Sprintf("Synthetic Smith %d", id), Status: "Alive", Species: "Human",
			Gender: "Female", OriginName: "Earth (C-137)", OriginURL: "https://rickandmortyapi.com/api/location/1",
			LocationName: "Citadel of Ricks", LocationURL: "https://rickandmortyapi.com/api/location/3",
			Image:   fmt.Sprintf("https://rickandmortyapi.com/api/character/avatar/%d.jpeg", id),
			Episode: []string{"https://rickandmortyapi.com/api/episode/1", "https://rickandmortyapi.com/api/episode/2"},
			URL:     fmt.Sprintf("https://rickandmortyapi.com/api/character/%d", id),
			Created: created.Add(time.Duration(id) * time.Second),
		}
	}
	return chars
}

func syncOnce(b *testing.B, ing *postgres.Ingests, chars []character.Character) (postgres.Run, time.Duration) {
	b.Helper()
	ctx := context.Background()
	lock, err := ing.TryLock(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer lock.Release()
	id, err := lock.StartRun(ctx)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	run, err := lock.Sync(ctx, postgres.Run{ID: id}, chars, postgres.SyncOptions{MaxDeleteRatio: 0.5})
	if err != nil {
		b.Fatal(err)
	}
	return run, time.Since(start)
}

// BenchmarkSync writes n new rows into an empty table, then syncs the same
// rows again (nothing may be rewritten). Reported in docs/benchmarks.md.
func BenchmarkSync(b *testing.B) {
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		chars := synthetic(n)
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				pool, _ := pgtest.NewPool(b)
				ing := postgres.NewIngests(pool)
				b.StartTimer()

				run, first := syncOnce(b, ing, chars)
				if run.Inserted != n {
					b.Fatalf("inserted %d, want %d", run.Inserted, n)
				}
				run, second := syncOnce(b, ing, chars)
				if changed := run.Inserted + run.Updated + run.Deleted; changed != 0 {
					b.Fatalf("unchanged sync changed %d rows", changed)
				}
				b.ReportMetric(float64(n)/first.Seconds(), "insert-rows/s")
				b.ReportMetric(float64(n)/second.Seconds(), "unchanged-rows/s")
				b.ReportMetric(float64(run.Inserted+run.Updated+run.Deleted), "rewritten-rows")
			}
		})
	}
}
