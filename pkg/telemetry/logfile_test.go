package telemetry_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rickmorty/rickmorty/pkg/telemetry"
)

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

func TestLogFileRotatesBeforeTheBoundAndKeepsWholeLines(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "api.log")
	const maxBytes = 1000
	f, err := telemetry.OpenLogFile(path, maxBytes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	var all []string
	for i := range 200 {
		line := fmt.Sprintf(`{"msg":"record %d","pad":"%s"}`+"\n", i, strings.Repeat("x", i%40))
		if _, err := f.Write([]byte(line)); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		all = append(all, line)
		if cur, prev := fileSize(t, path), fileSize(t, path+".1"); cur > maxBytes || prev > maxBytes {
			t.Fatalf("after write %d: %d and %d bytes, want each at most %d", i, cur, prev, maxBytes)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 2 {
		t.Errorf("directory holds %d files, want the log and one rotated file", len(entries))
	}
	// The rotated file followed by the current one are the latest records,
	// in order, whole.
	kept := readFile(t, path+".1") + readFile(t, path)
	if !strings.HasSuffix(strings.Join(all, ""), kept) || !strings.HasPrefix(kept, `{"msg":"record `) {
		t.Errorf("the two files are not the last records, whole and in order:\n%s", kept)
	}
	if n := strings.Count(kept, "\n"); n < 20 {
		t.Errorf("only %d records kept in 2 x %d bytes", n, maxBytes)
	}
}

func TestLogFileGivesALineLongerThanTheBoundAFileOfItsOwn(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "ingester.log")
	f, err := telemetry.OpenLogFile(path, 100)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	short, long := strings.Repeat("s", 29)+"\n", strings.Repeat("L", 249)+"\n"
	for _, line := range []string{short, long} {
		if _, err := f.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	if got, prev := readFile(t, path), readFile(t, path+".1"); got != long || prev != short {
		t.Errorf("after a long line: current %d bytes, previous %d; want the long line alone, the short one rotated", len(got), len(prev))
	}
	if _, err := f.Write([]byte(short)); err != nil {
		t.Fatal(err)
	}
	if got, prev := readFile(t, path), readFile(t, path+".1"); got != short || prev != long {
		t.Errorf("the write after the long line did not rotate it out: current %q, previous %d bytes", got, len(prev))
	}
}

func TestLogFileContinuesTheFileOfAPreviousProcess(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "api.log")
	old := strings.Repeat("o", 89) + "\n"
	if err := os.WriteFile(path, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := telemetry.OpenLogFile(path, 100)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	if _, err := f.Write([]byte("1234\n")); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, path); got != old+"1234\n" {
		t.Errorf("the file was not continued: %q", got)
	}
	if _, err := f.Write([]byte("123456789\n")); err != nil {
		t.Fatal(err)
	}
	if got, prev := readFile(t, path), readFile(t, path+".1"); got != "123456789\n" || prev != old+"1234\n" {
		t.Errorf("continued file not rotated at the bound: current %q, previous %q", got, prev)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("new file mode = %v (%v), want 0640 (readable by the pod's group)", fi.Mode().Perm(), err)
	}
}

func TestLogOutputWritesEveryRecordToBoth(t *testing.T) {
	t.Parallel()
	var stdout bytes.Buffer
	out, stop, err := telemetry.LogOutput(&stdout, telemetry.LogFileConfig{}, "api")
	if err != nil || out != &stdout {
		t.Fatalf("without LOG_FILE: %v, %v; want the writer itself", out, err)
	}
	stop()

	path := filepath.Join(t.TempDir(), "api.log")
	out, stop, err = telemetry.LogOutput(&stdout, telemetry.LogFileConfig{Path: path, MaxBytes: 1 << 20}, "api")
	if err != nil {
		t.Fatal(err)
	}
	log := telemetry.NewLogger(out, slog.LevelInfo, "api")
	log.Info("starting", "version", "dev")
	log.Warn("something", "n", 1)
	stop()
	if got := readFile(t, path); got != stdout.String() || strings.Count(got, "\n") != 2 {
		t.Fatalf("file and stdout differ:\nfile:\n%s\nstdout:\n%s", got, stdout.String())
	}
	for _, line := range strings.Split(strings.TrimSpace(readFile(t, path)), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec["component"] != "api" {
			t.Errorf("file line %q: not a JSON record of the api (%v)", line, err)
		}
	}
}

func TestLogOutputReportsAFailingFileOnceAndRecovers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "api.log")
	// A directory where the rotated file goes makes every rotation fail
	// (for root too).
	if err := os.MkdirAll(filepath.Join(path+".1", "busy"), 0o750); err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	out, stop, err := telemetry.LogOutput(&stdout, telemetry.LogFileConfig{Path: path, MaxBytes: 64 << 10}, "api")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	log := telemetry.NewLogger(out, slog.LevelInfo, "api")
	big := strings.Repeat("x", 40<<10)
	for i := range 5 {
		log.Info("record", "i", i, "pad", big)
	}
	if got := strings.Count(stdout.String(), `"msg":"record"`); got != 5 {
		t.Errorf("stdout has %d of 5 records while the file fails", got)
	}
	if got := strings.Count(stdout.String(), "log file: write failed"); got != 1 {
		t.Errorf("the failing file is reported %d times, want once:\n%s", got, stdout.String())
	}
	if n := fileSize(t, path); n > 64<<10 {
		t.Errorf("the file grew to %d bytes past its bound while rotation failed", n)
	}
	if err := os.RemoveAll(path + ".1"); err != nil {
		t.Fatal(err)
	}
	log.Info("record", "i", 5, "pad", big)
	if !strings.Contains(stdout.String(), "log file: writing again") {
		t.Errorf("recovery not reported:\n%s", stdout.String())
	}
	if !strings.Contains(readFile(t, path), `"i":5`) {
		t.Error("the record after recovery is not in the file")
	}
}

func TestLogOutputRefusesAnUnusablePath(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notADir := filepath.Join(dir, "file")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(notADir, "api.log"), dir} {
		_, _, err := telemetry.LogOutput(&bytes.Buffer{}, telemetry.LogFileConfig{Path: path, MaxBytes: 1 << 20}, "api")
		if err == nil || !strings.Contains(err.Error(), "LOG_FILE=") {
			t.Errorf("LOG_FILE=%s: err = %v, want a failure naming LOG_FILE", path, err)
		}
	}
}
