// Command fakeupstream serves the fake Rick and Morty API (pkg/upstream/fake)
// as a process, for black-box e2e tests and the offline demo. Point a client
// at UPSTREAM_URL=http://127.0.0.1:8081/api; drive faults and data through
// /_fake/ (see pkg/upstream/fake/control.go).
//
// Configuration comes from the environment, or from the matching flag, which
// wins:
//
//	FAKE_ADDR         -addr         listen address (default 127.0.0.1:8081; port 0 picks a free one)
//	FAKE_PUBLIC_BASE  -public-base  base URL written into next/prev links (default: each request's Host)
//	FAKE_DATASET      -dataset      file holding a JSON array of characters (default: the bundled set)
//	FAKE_LATENCY      -latency      delay added to every /character request, e.g. 50ms
//	FAKE_LOG_LEVEL    -log-level    debug logs one line per request (default info)
//
// Logs are JSON lines on stderr. Once listening, the command logs the real
// address and writes the base URL (http://ADDR/api) as one line to stdout, so
// a script can start it on port 0 and read where it went. SIGINT or SIGTERM
// shut it down gracefully.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rickmorty/rickmorty/pkg/upstream"
	"github.com/rickmorty/rickmorty/pkg/upstream/fake"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "fakeupstream:", err)
		os.Exit(1)
	}
}

// shutdownGrace is how long in-flight requests get to finish on shutdown
// before their connections are closed.
const shutdownGrace = 5 * time.Second

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg, err := parseConfig(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		// -h printed the usage; asking for help is not a failure.
		return nil
	}
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: cfg.logLevel}))

	chars, err := loadCharacters(cfg.dataset)
	if err != nil {
		return err
	}
	opts := []fake.Option{fake.WithFaults(fake.Faults{Latency: cfg.latency})}
	if cfg.publicBase != "" {
		opts = append(opts, fake.WithPublicBase(cfg.publicBase))
	}
	handler := logRequests(logger, fake.New(chars, opts...))

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.addr, err)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	addr := ln.Addr().String()
	base := "http://" + addr + "/api"
	logger.Info("listening", "addr", addr, "base", base, "public_base", cfg.publicBase,
		"characters", len(chars), "latency", cfg.latency.String())
	fmt.Fprintln(stdout, base)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		// Requests slower than the grace period (a long FAKE_LATENCY) are cut off.
		logger.Warn("graceful shutdown timed out; closing connections", "err", err)
		_ = srv.Close()
	}
	<-served //nolint:errcheck // http.ErrServerClosed: Shutdown has begun
	logger.Info("stopped")
	return nil
}

func loadCharacters(path string) ([]upstream.Character, error) {
	if path == "" {
		return fake.Dataset(), nil
	}
	f, err := os.Open(path) //nolint:gosec // G304: the operator names the data set file (FAKE_DATASET)
	if err != nil {
		return nil, fmt.Errorf("FAKE_DATASET: %w", err)
	}
	defer f.Close() //nolint:errcheck // opened read-only: nothing to flush
	chars, err := fake.LoadDataset(f)
	if err != nil {
		return nil, fmt.Errorf("FAKE_DATASET %s: %w", path, err)
	}
	return chars, nil
}
