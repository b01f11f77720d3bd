package listen_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rickmorty/rickmorty/pkg/listen"
	"github.com/rickmorty/rickmorty/pkg/pgtest"
)

const channel = "rickmorty_test_channel"

var appSeq atomic.Int64

type recorder struct {
	connects atomic.Int64
	payloads chan string
}

func start(t *testing.T, dbURL string) (*listen.Listener, *recorder, string) {
	t.Helper()
	rec := &recorder{payloads: make(chan string, 16)}
	app := fmt.Sprintf("listen-test-%d", appSeq.Add(1))
	l := listen.New(listen.Config{
		DatabaseURL: dbURL,
		Channel:     channel,
		AppName:     app,
		OnConnect:   func() { rec.connects.Add(1) },
		OnNotify:    func(p string) { rec.payloads <- p },
		MinBackoff:  20 * time.Millisecond,
		MaxBackoff:  200 * time.Millisecond,
		KeepAlive:   200 * time.Millisecond,
	}, prometheus.NewRegistry())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.Run(ctx) //nolint:errcheck // Run returns nil on cancel
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return l, rec, app
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func notify(t *testing.T, dbURL, payload string) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), "SELECT pg_notify($1, $2)", channel, payload); err != nil {
		t.Fatal(err)
	}
}

func TestDeliversNotifications(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.New(t)
	l, rec, _ := start(t, dbURL)
	eventually(t, "connected", l.Connected)
	if got, want := rec.connects.Load(), int64(1); got != want {
		t.Errorf("OnConnect calls = %d, want %d", got, want)
	}
	notify(t, dbURL, "42")
	select {
	case p := <-rec.payloads:
		if p != "42" {
			t.Errorf("payload = %q, want 42", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no notification")
	}
	// Past a keepalive interval the connection is still in use.
	time.Sleep(300 * time.Millisecond)
	notify(t, dbURL, "43")
	select {
	case <-rec.payloads:
	case <-time.After(5 * time.Second):
		t.Fatal("no notification after a keepalive")
	}
}

func TestReconnectsAfterBackendIsTerminated(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.New(t)
	l, rec, app := start(t, dbURL)
	eventually(t, "connected", l.Connected)

	admin, err := pgx.Connect(context.Background(), pgtest.AdminURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	var killed int
	if err := admin.QueryRow(context.Background(),
		"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1", app).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed != 1 {
		t.Fatalf("terminated %d backends, want 1", killed)
	}
	eventually(t, "reconnected", func() bool { return rec.connects.Load() == 2 && l.Connected() })
	notify(t, dbURL, "7")
	select {
	case <-rec.payloads:
	case <-time.After(5 * time.Second):
		t.Fatal("no notification after reconnecting")
	}
}

func TestReconnectsAfterOutage(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.New(t)
	proxy, viaProxy := pgtest.NewProxy(t, dbURL)
	l, rec, _ := start(t, viaProxy)
	eventually(t, "connected", l.Connected)
	proxy.Down()
	eventually(t, "disconnected", func() bool { return !l.Connected() })
	time.Sleep(100 * time.Millisecond) // a few failed attempts
	if got := rec.connects.Load(); got != 1 {
		t.Fatalf("OnConnect ran %d times while the database was down", got)
	}
	proxy.Up()
	eventually(t, "reconnected", func() bool { return rec.connects.Load() == 2 && l.Connected() })
}
