// Package config reads typed settings from the environment, collecting every
// invalid value into one error that names the variable.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Reader reads variables through getenv and remembers what was wrong.
type Reader struct {
	getenv func(string) string
	errs   []error
}

// NewReader returns a Reader over getenv (os.Getenv in production).
func NewReader(getenv func(string) string) *Reader {
	return &Reader{getenv: getenv}
}

// Err returns every problem found so far, or nil.
func (r *Reader) Err() error { return errors.Join(r.errs...) }

func (r *Reader) fail(name, value, format string, args ...any) {
	r.errs = append(r.errs, fmt.Errorf("%s=%q: %s", name, value, fmt.Sprintf(format, args...)))
}

func (r *Reader) lookup(name string) (string, bool) {
	v := strings.TrimSpace(r.getenv(name))
	return v, v != ""
}

// String returns the variable or def when it is unset or empty.
func (r *Reader) String(name, def string) string {
	if v, ok := r.lookup(name); ok {
		return v
	}
	return def
}

// Required returns the variable, recording an error when it is missing.
func (r *Reader) Required(name string) string {
	v, ok := r.lookup(name)
	if !ok {
		r.errs = append(r.errs, fmt.Errorf("%s is required", name))
	}
	return v
}

// Int returns the variable as an integer in [lo, hi], or def when unset.
func (r *Reader) Int(name string, def, lo, hi int) int {
	v, ok := r.lookup(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		r.fail(name, v, "not an integer")
		return def
	}
	if n < lo || n > hi {
		r.fail(name, v, "must be between %d and %d", lo, hi)
		return def
	}
	return n
}

// Float returns the variable as a number in [lo, hi], or def when unset.
func (r *Reader) Float(name string, def, lo, hi float64) float64 {
	v, ok := r.lookup(name)
	if !ok {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		r.fail(name, v, "not a number")
		return def
	}
	if f < lo || f > hi {
		r.fail(name, v, "must be between %g and %g", lo, hi)
		return def
	}
	return f
}

// Bool returns the variable as a boolean (true/false/1/0), or def when unset.
func (r *Reader) Bool(name string, def bool) bool {
	v, ok := r.lookup(name)
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.fail(name, v, "not a boolean (use true or false)")
		return def
	}
	return b
}

// Duration returns the variable as a Go duration (e.g. 30s, 5m) in [lo, hi],
// or def when unset.
func (r *Reader) Duration(name string, def, lo, hi time.Duration) time.Duration {
	v, ok := r.lookup(name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		r.fail(name, v, "not a duration (use a value like 500ms, 30s or 5m)")
		return def
	}
	if d < lo || d > hi {
		r.fail(name, v, "must be between %s and %s", lo, hi)
		return def
	}
	return d
}

// URL returns the variable as an absolute http(s) URL, or def when unset.
func (r *Reader) URL(name, def string) string {
	v, ok := r.lookup(name)
	if !ok {
		return def
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		r.fail(name, v, "must be an absolute http:// or https:// URL")
		return def
	}
	return strings.TrimRight(v, "/")
}

// DatabaseURL returns the required Postgres URL (postgres://...) or
// key=value DSN in name. The value is not echoed: it may hold a password.
func (r *Reader) DatabaseURL(name string) string {
	v := r.Required(name)
	if v == "" {
		return v
	}
	return r.checkDatabaseURL(name, v)
}

// OptionalDatabaseURL is DatabaseURL for a variable that may be unset ("").
func (r *Reader) OptionalDatabaseURL(name string) string {
	v, ok := r.lookup(name)
	if !ok {
		return ""
	}
	return r.checkDatabaseURL(name, v)
}

func (r *Reader) checkDatabaseURL(name, v string) string {
	if strings.Contains(v, "://") {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			r.errs = append(r.errs, fmt.Errorf("%s: must be a postgres:// URL or a key=value connection string", name))
			return v
		}
	}
	if _, err := pgconn.ParseConfig(v); err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s: not a valid Postgres connection string", name))
	}
	return v
}

// Addr returns the variable as a listen address (host:port or :port), or
// def when unset.
func (r *Reader) Addr(name, def string) string {
	v, ok := r.lookup(name)
	if !ok {
		return def
	}
	if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
		r.fail(name, v, "must be host:port or :port")
		return def
	}
	return v
}

// LogLevel returns the variable as a slog level (debug, info, warn, error).
func (r *Reader) LogLevel(name string, def slog.Level) slog.Level {
	v, ok := r.lookup(name)
	if !ok {
		return def
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(v)); err != nil {
		r.fail(name, v, "must be debug, info, warn or error")
		return def
	}
	return l
}

// Check records an error for name when ok is false; for rules that span
// several variables.
func (r *Reader) Check(ok bool, name, format string, args ...any) {
	if !ok {
		r.errs = append(r.errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
}

// MaskURL hides the password of a database URL or DSN for logging.
func MaskURL(s string) string {
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			return "(unparsable URL)"
		}
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	fields := strings.Fields(s)
	for i, f := range fields {
		if strings.HasPrefix(f, "password=") {
			fields[i] = "password=xxxxx"
		}
	}
	return strings.Join(fields, " ")
}
