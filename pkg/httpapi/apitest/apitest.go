// Package apitest has fixtures for the API's tests: characters to seed and
// a stand-in for the ingester's commit.
package apitest

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rickmorty/rickmorty/pkg/character"
	"github.com/rickmorty/rickmorty/pkg/postgres"
)

// names differ in their first letter, so every collation orders them the
// same way as a byte comparison does.
var names = []string{"Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot", "Golf"}

// Characters returns n characters with ids 1..n whose names and creation
// times repeat, so sorting by either needs the id tie breaker.
func Characters(n int) []character.Character {
	base := time.Date(2017, 11, 4, 18, 48, 46, 250_000_000, time.UTC)
	out := make([]character.Character, n)
	for i := range out {
		id := i + 1
		out[i] = character.Character{
			ID:           id,
			Name:         names[(id*3)%len(names)],
			Status:       "Alive",
			Species:      "Human",
			Type:         "",
			Gender:       "Female",
			OriginName:   "Earth (C-137)",
			OriginURL:    "https://rickandmortyapi.com/api/location/1",
			LocationName: "Citadel of Ricks",
			LocationURL:  "https://rickandmortyapi.com/api/location/3",
			Image:        "https://rickandmortyapi.com/api/character/avatar/" + strconv.Itoa(id) + ".jpeg",
			Episode:      []string{"https://rickandmortyapi.com/api/episode/1"},
			URL:          "https://rickandmortyapi.com/api/character/" + strconv.Itoa(id),
			Created:      base.Add(time.Duration((id*5)%4) * time.Hour),
		}
	}
	return out
}

// Change is one simulated ingest.
type Change struct {
	Upsert []character.Character
	Delete []int
}

// Ingest does what the ingester does on success, in one transaction:
// merge characters, bump the data version, record a successful run and
// NOTIFY, so the notification arrives exactly when the data is visible. It
// returns the new data version.
func Ingest(t testing.TB, databaseURL string, ch Change) int64 {
	t.Helper()
	v, err := ingest(databaseURL, ch, true)
	if err != nil {
		t.Fatalf("apitest: ingest: %v", err)
	}
	return v
}

// IngestSilently is Ingest without the NOTIFY: a notification the API
// missed, as happens while its listener is disconnected.
func IngestSilently(t testing.TB, databaseURL string, ch Change) int64 {
	t.Helper()
	v, err := ingest(databaseURL, ch, false)
	if err != nil {
		t.Fatalf("apitest: ingest: %v", err)
	}
	return v
}

func ingest(databaseURL string, ch Change, notify bool) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit this is a no-op
	var b pgx.Batch
	for _, c := range ch.Upsert {
		b.Queue(`INSERT INTO characters (id, name, status, species, type, gender, origin_name, origin_url,
	location_name, location_url, image, episode, url, created)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, status = EXCLUDED.status, species = EXCLUDED.species,
	type = EXCLUDED.type, gender = EXCLUDED.gender, origin_name = EXCLUDED.origin_name,
	origin_url = EXCLUDED.origin_url, location_name = EXCLUDED.location_name,
	location_url = EXCLUDED.location_url, image = EXCLUDED.image, episode = EXCLUDED.episode,
	url = EXCLUDED.url, created = EXCLUDED.created, synced_at = now()`,
			c.ID, c.Name, c.Status, c.Species, c.Type, c.Gender, c.OriginName, c.OriginURL,
			c.LocationName, c.LocationURL, c.Image, c.Episode, c.URL, c.Created)
	}
	if len(ch.Delete) > 0 {
		b.Queue(`DELETE FROM characters WHERE id = ANY($1)`, ch.Delete)
	}
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return 0, fmt.Errorf("merge: %w", err)
	}
	var version int64
	if err := tx.QueryRow(ctx, `UPDATE data_version SET version = version + 1, updated_at = clock_timestamp() RETURNING version`).Scan(&version); err != nil {
		return 0, fmt.Errorf("bump version: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO ingest_runs (started_at, finished_at, result, kept, inserted, deleted, data_version)
VALUES (now() - interval '1 second', now(), 'success', $1, $1, $2, $3)`, len(ch.Upsert), len(ch.Delete), version); err != nil {
		return 0, fmt.Errorf("record run: %w", err)
	}
	if notify {
		if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, postgres.NotifyChannel, strconv.FormatInt(version, 10)); err != nil {
			return 0, fmt.Errorf("notify: %w", err)
		}
	}
	return version, tx.Commit(ctx)
}
