package config

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Kind says how a string Setting is checked. The other kinds follow from
// the type of Dest (*int, *int64, *float64, *time.Duration, *slog.Level).
type Kind int

// The kinds of string settings.
const (
	Text        Kind = iota // any text (Check may add a rule)
	URL                     // absolute http(s) URL, trailing slashes dropped
	Addr                    // listen address, host:port or :port
	DatabaseURL             // Postgres URL or key=value DSN, never echoed
)

// Setting declares one environment variable: its name, default, bounds and
// meaning, and where its value goes. A binary declares each of its settings
// once, in a slice; loading, the start-up log, the --help listing, the
// README tables and the chart's schema are derived from (or checked
// against) that slice.
type Setting struct {
	Name string
	Kind Kind // for a *string Dest
	// Default is the value when the variable is unset, written as in the
	// environment ("5m", "10000"); "" leaves the zero value.
	Default string
	// Min and Max bound an int, float or duration, written like Default.
	Min, Max string
	Required bool
	Secret   bool // a database URL: its password is masked when logged
	// Scope names the group of commands that read the setting; "" means
	// every command. Out of scope, the variable is ignored and Dest takes
	// Default.
	Scope string
	Usage string
	// Check is an extra rule for a string value (e.g. a cron spec), or
	// for a duration, given in its String form (e.g. whole seconds).
	Check func(string) error
	// Dest receives the value: *string, *int, *int64, *float64,
	// *time.Duration or *slog.Level.
	Dest any
}

// Load reads every setting in scopes (see InScope) into its Dest,
// recording each invalid value. The other settings take their default,
// whatever the environment says. It panics on a declaration that does not
// parse (Validate reports it in a test).
func (r *Reader) Load(settings []Setting, scopes ...string) {
	unset := NewReader(func(string) string { return "" })
	for _, s := range settings {
		if err := s.validate(); err != nil {
			panic(err)
		}
		if s.inScope(scopes) {
			r.load(s)
		} else {
			unset.load(s)
		}
	}
}

// InScope returns the settings whose Scope is "" or one of scopes: those a
// command with these scopes reads.
func InScope(settings []Setting, scopes ...string) []Setting {
	var out []Setting
	for _, s := range settings {
		if s.inScope(scopes) {
			out = append(out, s)
		}
	}
	return out
}

func (s Setting) inScope(scopes []string) bool {
	return s.Scope == "" || slices.Contains(scopes, s.Scope)
}

// Validate reports a declaration whose default or bounds do not parse, or
// whose default lies outside its bounds, or a name declared twice.
func Validate(settings []Setting) error {
	seen := map[string]bool{}
	for _, s := range settings {
		if seen[s.Name] {
			return fmt.Errorf("%s declared twice", s.Name)
		}
		seen[s.Name] = true
		if err := s.validate(); err != nil {
			return err
		}
		if s.Default != "" && !s.Required {
			r := NewReader(func(string) string { return s.Default })
			r.load(s)
			if err := r.Err(); err != nil {
				return fmt.Errorf("default of %s: %w", s.Name, err)
			}
		}
	}
	return nil
}

func (s Setting) validate() error {
	bad := func(what, v string) error { return fmt.Errorf("setting %s: %s %q does not parse", s.Name, what, v) }
	switch s.Dest.(type) {
	case *int, *int64:
		for what, v := range map[string]string{"default": s.Default, "min": s.Min, "max": s.Max} {
			if _, err := strconv.Atoi(v); err != nil {
				return bad(what, v)
			}
		}
	case *float64:
		for what, v := range map[string]string{"default": s.Default, "min": s.Min, "max": s.Max} {
			if _, err := strconv.ParseFloat(v, 64); err != nil {
				return bad(what, v)
			}
		}
	case *time.Duration:
		for what, v := range map[string]string{"default": s.Default, "min": s.Min, "max": s.Max} {
			if _, err := time.ParseDuration(v); err != nil {
				return bad(what, v)
			}
		}
	case *slog.Level:
		var l slog.Level
		if err := l.UnmarshalText([]byte(s.Default)); err != nil {
			return bad("default", s.Default)
		}
	case *string:
	default:
		return fmt.Errorf("setting %s: unsupported Dest %T", s.Name, s.Dest)
	}
	return nil
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

func atof(s string) float64 { f, _ := strconv.ParseFloat(s, 64); return f }

func dur(s string) time.Duration { d, _ := time.ParseDuration(s); return d }

func (r *Reader) load(s Setting) {
	switch d := s.Dest.(type) {
	case *int:
		*d = r.Int(s.Name, atoi(s.Default), atoi(s.Min), atoi(s.Max))
	case *int64:
		*d = int64(r.Int(s.Name, atoi(s.Default), atoi(s.Min), atoi(s.Max)))
	case *float64:
		*d = r.Float(s.Name, atof(s.Default), atof(s.Min), atof(s.Max))
	case *time.Duration:
		*d = r.Duration(s.Name, dur(s.Default), dur(s.Min), dur(s.Max))
		if s.Check != nil {
			if err := s.Check(d.String()); err != nil {
				r.Check(false, s.Name, "%v", err)
			}
		}
	case *slog.Level:
		var def slog.Level
		_ = def.UnmarshalText([]byte(s.Default))
		*d = r.LogLevel(s.Name, def)
	case *string:
		*d = r.loadString(s)
	}
}

func (r *Reader) loadString(s Setting) string {
	var v string
	switch {
	case s.Kind == DatabaseURL && s.Required:
		return r.DatabaseURL(s.Name)
	case s.Kind == DatabaseURL:
		return r.OptionalDatabaseURL(s.Name)
	case s.Required:
		v = r.Required(s.Name)
	case s.Kind == URL:
		v = r.URL(s.Name, s.Default)
	case s.Kind == Addr:
		v = r.Addr(s.Name, s.Default)
	default:
		v = r.String(s.Name, s.Default)
	}
	if s.Check != nil && v != "" {
		if err := s.Check(v); err != nil {
			r.Check(false, s.Name, "%v", err)
		}
	}
	return v
}

// LogValue is the settings' current values (those of their Dest) as a
// group keyed by variable name, with Secret ones masked.
func LogValue(settings []Setting) slog.Value {
	attrs := make([]slog.Attr, 0, len(settings))
	for _, s := range settings {
		switch d := s.Dest.(type) {
		case *int:
			attrs = append(attrs, slog.Int(s.Name, *d))
		case *int64:
			attrs = append(attrs, slog.Int64(s.Name, *d))
		case *float64:
			attrs = append(attrs, slog.Float64(s.Name, *d))
		case *time.Duration:
			attrs = append(attrs, slog.String(s.Name, d.String()))
		case *slog.Level:
			attrs = append(attrs, slog.String(s.Name, d.String()))
		case *string:
			v := *d
			if s.Secret {
				v = MaskURL(v)
			}
			attrs = append(attrs, slog.String(s.Name, v))
		}
	}
	return slog.GroupValue(attrs...)
}

// DefaultText is the default as listed: the value, "(required)" or "(unset)".
func (s Setting) DefaultText() string {
	switch {
	case s.Required:
		return "(required)"
	case s.Default == "":
		return "(unset)"
	}
	return s.Default
}

// Range is "min-max" for a bounded setting, else "".
func (s Setting) Range() string {
	if s.Min == "" && s.Max == "" {
		return ""
	}
	return s.Min + " - " + s.Max
}

// WriteTable lists the settings (name, default, range, the commands that
// read it when usedBy is not nil, meaning) for --help and `config`.
func WriteTable(w io.Writer, settings []Setting, usedBy func(Setting) string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := []string{"VARIABLE", "DEFAULT", "RANGE"}
	if usedBy != nil {
		head = append(head, "USED BY")
	}
	fmt.Fprintln(tw, strings.Join(append(head, "MEANING"), "\t"))
	for _, s := range settings {
		row := []string{s.Name, s.DefaultText(), s.Range()}
		if usedBy != nil {
			row = append(row, usedBy(s))
		}
		fmt.Fprintln(tw, strings.Join(append(row, s.Usage), "\t"))
	}
	return tw.Flush()
}

// WholeSeconds is a Check for durations that must be a whole number of
// seconds (those sent in seconds, such as Cache-Control's max-age).
func WholeSeconds(d string) error {
	v, err := time.ParseDuration(d)
	if err != nil {
		return err
	}
	if v%time.Second != 0 {
		return fmt.Errorf("must be a whole number of seconds (got %s)", d)
	}
	return nil
}
