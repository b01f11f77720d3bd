package postgres

import (
	"errors"
	"testing"
)

func TestGuard(t *testing.T) {
	opts := SyncOptions{MaxDeleteRatio: 0.5}
	tests := []struct {
		name                   string
		stored, gone, incoming int
		opts                   SyncOptions
		refused                bool
	}{
		{"first ingest into an empty table", 0, 0, 100, opts, false},
		{"empty upstream into an empty table", 0, 0, 0, opts, false},
		{"empty crawl over stored rows", 10, 10, 0, opts, true},
		{"empty crawl forced", 10, 10, 0, SyncOptions{MaxDeleteRatio: 0.5, Force: true}, false},
		{"exactly half deleted", 10, 5, 5, opts, false},
		{"more than half deleted", 10, 6, 4, opts, true},
		{"more than half deleted, forced", 10, 6, 4, SyncOptions{MaxDeleteRatio: 0.5, Force: true}, false},
		{"ratio 1 allows deleting all but one", 10, 9, 1, SyncOptions{MaxDeleteRatio: 1}, false},
		{"ratio 0 refuses any delete", 10, 1, 9, SyncOptions{MaxDeleteRatio: 0}, true},
	}
	for _, tt := range tests {
		err := Guard(tt.stored, tt.gone, tt.incoming, tt.opts)
		if got := errors.Is(err, ErrGuard); got != tt.refused {
			t.Errorf("%s: refused = %v (%v), want %v", tt.name, got, err, tt.refused)
		}
	}
}
