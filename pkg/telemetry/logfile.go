package telemetry

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
)

// DefaultLogFileMaxBytes is LogFileConfig.MaxBytes when unset (the
// binaries declare LOG_FILE_MAX_BYTES, its default and bounds, with their
// other settings).
const DefaultLogFileMaxBytes = 10 << 20 // 10 MiB

// LogFileConfig is the optional copy of the JSON log in a file of bounded
// size, for a log shipper that tails it (the chart's Fluent Bit sidecar in
// its "file" mode). The log still goes to stdout/stderr as well.
type LogFileConfig struct {
	// Path of the file (LOG_FILE); empty: no file.
	Path string
	// MaxBytes (LOG_FILE_MAX_BYTES) bounds the file: see LogFile.
	MaxBytes int64
}

// LogFile is an append-only file that never grows past MaxBytes: before a
// write that would take it past the bound, the file is renamed to
// "<path>.1" (replacing the previous one) and a new, empty file is started.
// So the two files hold at most 2 x MaxBytes, a tailer that follows the
// rename loses nothing written before it, and a write (one log record, one
// line) is never split across files. The one exception to the bound is a
// single write longer than MaxBytes, which gets a file of its own.
//
// The file is created with mode 0640: a sidecar that runs as another user
// of the pod's group (fsGroup) can read it.
type LogFile struct {
	mu   sync.Mutex
	path string
	max  int64
	f    *os.File
	size int64
}

// OpenLogFile opens path for appending, creating it if needed. A file left
// by a previous process is continued (and rotated once it reaches maxBytes).
func OpenLogFile(path string, maxBytes int64) (*LogFile, error) {
	if maxBytes <= 0 {
		return nil, fmt.Errorf("log file %s: the size bound must be positive, got %d", path, maxBytes)
	}
	l := &LogFile{path: path, max: maxBytes}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *LogFile) open() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640) //nolint:gosec // G302/G304: LOG_FILE is the operator's own path, read by the pod's log sidecar through the shared group
	if err != nil {
		return fmt.Errorf("open log file: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close() // the Stat error is the one to report
		return fmt.Errorf("open log file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		_ = f.Close() // nothing was written
		return fmt.Errorf("open log file: %s is not a regular file", l.path)
	}
	l.f, l.size = f, fi.Size()
	return nil
}

// Write appends p, rotating first when p would take the file past the bound.
// When the rotation fails, p is not written (the bound holds) and the error
// is returned; the next write tries again.
func (l *LogFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		if err := l.open(); err != nil {
			return 0, err
		}
	}
	if l.size > 0 && l.size+int64(len(p)) > l.max {
		if err := l.rotate(); err != nil {
			return 0, err
		}
	}
	n, err := l.f.Write(p)
	l.size += int64(n)
	return n, err
}

// rotate renames the file to <path>.1 and opens a new one.
func (l *LogFile) rotate() error {
	if err := os.Rename(l.path, l.path+".1"); err != nil {
		return fmt.Errorf("rotate log file: %w", err)
	}
	err := l.f.Close()
	l.f = nil
	if err != nil {
		return fmt.Errorf("rotate log file: close: %w", err)
	}
	return l.open()
}

// Close closes the file; later writes open it again.
func (l *LogFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// LogOutput returns where a process's JSON log goes: w alone when cfg.Path
// is empty, else w and the LogFile at cfg.Path. The file never holds up w:
// w gets every record first, and a failing file (volume full, rotation
// refused) is reported on w once when it starts failing and once when it
// works again, never per record. stop closes the file.
func LogOutput(w io.Writer, cfg LogFileConfig, component string) (out io.Writer, stop func(), err error) {
	if cfg.Path == "" {
		return w, func() {}, nil
	}
	maxBytes := cfg.MaxBytes
	if maxBytes == 0 {
		maxBytes = DefaultLogFileMaxBytes
	}
	f, err := OpenLogFile(cfg.Path, maxBytes)
	if err != nil {
		return nil, nil, fmt.Errorf("LOG_FILE=%q: %w", cfg.Path, err)
	}
	t := &teeLog{
		w:    w,
		file: f,
		path: cfg.Path,
		// Its own handler on w only: reporting on the file cannot recurse.
		report: slog.New(slog.NewJSONHandler(w, nil)).With("component", component),
	}
	return t, func() { _ = f.Close() }, nil // on the way out: nothing left to tell
}

// teeLog writes to w, then to the file; see LogOutput.
type teeLog struct {
	w       io.Writer
	file    *LogFile
	path    string
	report  *slog.Logger
	failing atomic.Bool
}

func (t *teeLog) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	if _, ferr := t.file.Write(p); ferr != nil {
		if !t.failing.Swap(true) {
			t.report.Warn("log file: write failed; records still go here, and to the file again once it accepts them",
				"log_file", t.path, "err", ferr)
		}
	} else if t.failing.Swap(false) {
		t.report.Info("log file: writing again", "log_file", t.path)
	}
	return n, err
}
