package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"
)

type config struct {
	addr       string
	publicBase string
	dataset    string
	latency    time.Duration
	logLevel   slog.Level
}

// parseConfig reads the environment, then lets flags override it. Errors name
// the variable, since that is what an operator set.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	envOr := func(key, def string) string {
		if v := getenv(key); v != "" {
			return v
		}
		return def
	}
	fs := flag.NewFlagSet("fakeupstream", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", envOr("FAKE_ADDR", "127.0.0.1:8081"), "listen address (FAKE_ADDR)")
	publicBase := fs.String("public-base", getenv("FAKE_PUBLIC_BASE"), "base URL for next/prev links (FAKE_PUBLIC_BASE)")
	dataset := fs.String("dataset", getenv("FAKE_DATASET"), "JSON array of characters; default bundled (FAKE_DATASET)")
	latency := fs.String("latency", envOr("FAKE_LATENCY", "0s"), "delay added to /character requests (FAKE_LATENCY)")
	logLevel := fs.String("log-level", envOr("FAKE_LOG_LEVEL", "info"), "debug, info, warn or error (FAKE_LOG_LEVEL)")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}

	cfg := config{addr: *addr, publicBase: *publicBase, dataset: *dataset}
	var errs []error
	d, err := time.ParseDuration(*latency)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("FAKE_LATENCY: %w", err))
	case d < 0:
		errs = append(errs, fmt.Errorf("FAKE_LATENCY: %s is negative", d))
	}
	cfg.latency = d
	if err := cfg.logLevel.UnmarshalText([]byte(*logLevel)); err != nil {
		errs = append(errs, fmt.Errorf("FAKE_LOG_LEVEL: %w", err))
	}
	return cfg, errors.Join(errs...)
}
