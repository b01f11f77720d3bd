package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rickmorty/rickmorty/pkg/upstream"
)

// syncBuffer is a bytes.Buffer safe to write from the server while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startRun runs the command until the test ends and returns the base URL it
// printed, its stderr, and a function that stops it and returns run's error.
func startRun(t *testing.T, args []string, env map[string]string) (string, *syncBuffer, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	stdoutR, stdoutW := io.Pipe()
	stderr := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, func(k string) string { return env[k] }, stdoutW, stderr)
		_ = stdoutW.Close() // a PipeWriter's Close always returns nil
	}()

	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdoutR).ReadString('\n')
		lines <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, stdoutR)
	}()
	var base string
	select {
	case base = <-lines:
	case <-time.After(10 * time.Second):
		t.Fatalf("no base URL on stdout; stderr: %s", stderr)
	}
	if base == "" {
		cancel()
		t.Fatalf("run ended early: %v; stderr: %s", <-done, stderr)
	}

	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("run did not return after cancel")
			}
		})
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return base, stderr, stop
}

func getPage(t *testing.T, url string) upstream.Page {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if got, want := res.StatusCode, http.StatusOK; got != want {
		t.Fatalf("GET %s: status %d, want %d", url, got, want)
	}
	var p upstream.Page
	if err := json.NewDecoder(res.Body).Decode(&p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunServesLogsAndShutsDown(t *testing.T) {
	base, stderr, stop := startRun(t, nil, map[string]string{
		"FAKE_ADDR":        "127.0.0.1:0",
		"FAKE_PUBLIC_BASE": "http://public.example/api",
		"FAKE_LATENCY":     "1ms",
		"FAKE_LOG_LEVEL":   "debug",
	})
	if !strings.HasPrefix(base, "http://127.0.0.1:") || strings.HasSuffix(base, ":0/api") {
		t.Fatalf("base = %q, want the real loopback port", base)
	}

	p := getPage(t, base+"/character?page=1")
	if got, want := *p.Info.Next, "http://public.example/api/character?page=2"; got != want {
		t.Errorf("next = %s, want %s", got, want)
	}
	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
	if resp, err := http.Get(base + "/character"); err == nil {
		resp.Body.Close()
		t.Error("server still answers after shutdown")
	}

	var sawListening, sawRequest bool
	for line := range strings.Lines(stderr.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		switch rec["msg"] {
		case "listening":
			sawListening = rec["level"] == "INFO" && "http://"+rec["addr"].(string)+"/api" == base
		case "request":
			sawRequest = rec["level"] == "DEBUG" && rec["path"] == "/api/character" && rec["status"] == float64(200)
		}
	}
	if !sawListening || !sawRequest {
		t.Errorf("listening logged: %v, request logged: %v; stderr:\n%s", sawListening, sawRequest, stderr)
	}
}

func TestRunFlagsOverrideEnvAndLoadDataset(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chars.json")
	if err := os.WriteFile(path, []byte(`[{"id":2,"name":"B"},{"id":1,"name":"A"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	base, stderr, _ := startRun(t, []string{"-addr", "127.0.0.1:0", "-dataset", path},
		map[string]string{"FAKE_ADDR": "not an address"})
	p := getPage(t, base+"/character")
	if got, want := p.Info.Count, 2; got != want {
		t.Errorf("count = %d, want %d", got, want)
	}
	if got, want := p.Results[0].Name, "A"; got != want {
		t.Errorf("first = %q, want %q", got, want)
	}
	if strings.Contains(stderr.String(), `"msg":"request"`) {
		t.Error("request lines logged at the default info level")
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.json")
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, map[string]string{"FAKE_LATENCY": "soon"}, "FAKE_LATENCY"},
		{nil, map[string]string{"FAKE_LATENCY": "-1s"}, "FAKE_LATENCY"},
		{nil, map[string]string{"FAKE_LOG_LEVEL": "loud"}, "FAKE_LOG_LEVEL"},
		{nil, map[string]string{"FAKE_DATASET": missing}, "FAKE_DATASET"},
		{nil, map[string]string{"FAKE_ADDR": "256.0.0.1:99999"}, "listen"},
		{[]string{"-nope"}, nil, "nope"},
		{[]string{"extra"}, nil, "unexpected arguments"},
	} {
		env := func(k string) string { return tc.env[k] }
		err := run(t.Context(), tc.args, env, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run(%v, %v) = %v, want an error mentioning %q", tc.args, tc.env, err, tc.want)
		}
	}
	if err := run(t.Context(), []string{"-h"}, func(string) string { return "" }, io.Discard, io.Discard); err != nil {
		t.Errorf("-h: %v, want nil", err)
	}
}
