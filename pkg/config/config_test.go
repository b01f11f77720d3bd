package config

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestReaderDefaultsAndValues(t *testing.T) {
	r := NewReader(env(map[string]string{"N": "7", "D": "250ms", "B": "true", "U": "http://x:1/api/", "L": "debug", "F": "0.25",
		"DBDSN": "host=db user=app dbname=rm", "ADDR": "127.0.0.1:9090"}))
	if got, want := r.Int("N", 1, 1, 10), 7; got != want {
		t.Errorf("Int = %d, want %d", got, want)
	}
	if got, want := r.Int("MISSING", 3, 1, 10), 3; got != want {
		t.Errorf("Int default = %d, want %d", got, want)
	}
	if got, want := r.Duration("D", time.Second, 0, time.Hour), 250*time.Millisecond; got != want {
		t.Errorf("Duration = %s, want %s", got, want)
	}
	if got, want := r.Bool("B", false), true; got != want {
		t.Errorf("Bool = %v, want %v", got, want)
	}
	if got, want := r.URL("U", ""), "http://x:1/api"; got != want {
		t.Errorf("URL = %q, want %q", got, want)
	}
	if got, want := r.LogLevel("L", slog.LevelInfo), slog.LevelDebug; got != want {
		t.Errorf("LogLevel = %v, want %v", got, want)
	}
	if got, want := r.Float("F", 0.5, 0, 1), 0.25; got != want {
		t.Errorf("Float = %v, want %v", got, want)
	}
	if got, want := r.DatabaseURL("DBDSN"), "host=db user=app dbname=rm"; got != want {
		t.Errorf("DatabaseURL = %q, want %q", got, want)
	}
	if got, want := r.Addr("ADDR", ":1"), "127.0.0.1:9090"; got != want {
		t.Errorf("Addr = %q, want %q", got, want)
	}
	if err := r.Err(); err != nil {
		t.Fatalf("Err = %v", err)
	}
}

func TestReaderErrorsNameTheVariable(t *testing.T) {
	r := NewReader(env(map[string]string{"N": "x", "M": "99", "D": "5 minutes", "U": "ftp://x", "B": "maybe", "L": "loud", "DB": "mysql://x",
		"NAN": "NaN", "INF": "+Inf", "DSN": "garbage", "A": "8080"}))
	r.Int("N", 1, 1, 10)
	r.Int("M", 1, 1, 10)
	r.Duration("D", time.Second, 0, time.Hour)
	r.URL("U", "")
	r.Bool("B", false)
	r.LogLevel("L", slog.LevelInfo)
	r.Required("REQ")
	r.DatabaseURL("DB")
	if got := r.Float("NAN", 0.5, 0, 1); got != 0.5 {
		t.Errorf("Float(NaN) = %v, want the default", got)
	}
	r.Float("INF", 0.5, 0, 1e9)
	r.DatabaseURL("DSN")
	r.Addr("A", ":1")
	err := r.Err()
	if err == nil {
		t.Fatal("Err = nil, want errors")
	}
	for _, name := range []string{"N=", "M=", "D=", "U=", "B=", "L=", "REQ is required", "DB:", "NAN=", "INF=", "DSN:", "A="} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}

func TestMaskURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://app:s3cret@db:5432/rm?sslmode=disable", "postgres://app:xxxxx@db:5432/rm?sslmode=disable"},
		{"postgres://app@db/rm", "postgres://app@db/rm"},
		{"host=db user=app password=s3cret dbname=rm", "host=db user=app password=xxxxx dbname=rm"},
	}
	for _, tt := range tests {
		if got := MaskURL(tt.in); got != tt.want {
			t.Errorf("MaskURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if strings.Contains(MaskURL(tt.in), "s3cret") {
			t.Errorf("MaskURL(%q) leaks the password", tt.in)
		}
	}
}

func TestLoadFromDeclarations(t *testing.T) {
	var (
		n     int
		d     time.Duration
		s     string
		level slog.Level
	)
	decl := []Setting{
		{Name: "N", Default: "3", Min: "1", Max: "10", Dest: &n},
		{Name: "D", Default: "5m", Min: "1s", Max: "1h", Scope: "serve", Dest: &d},
		{Name: "S", Kind: DatabaseURL, Required: true, Secret: true, Dest: &s},
		{Name: "L", Default: "info", Dest: &level},
	}
	if err := Validate(decl); err != nil {
		t.Fatal(err)
	}
	r := NewReader(env(map[string]string{"N": "11", "D": "2h", "S": "postgres://u:pw@h/db"}))
	r.Load(decl)
	if err := r.Err(); err == nil || err.Error() != `N="11": must be between 1 and 10` {
		t.Errorf("Load out of scope D: err = %v, want only N's bound named", err)
	}
	if n != 3 || d != 5*time.Minute || level != slog.LevelInfo {
		t.Errorf("values = %d %s %s, want the defaults", n, d, level)
	}
	r = NewReader(env(map[string]string{"D": "2h", "S": "postgres://u:pw@h/db"}))
	r.Load(decl, "serve")
	if err := r.Err(); err == nil || err.Error() != `D="2h": must be between 1s and 1h0m0s` {
		t.Errorf("Load in scope: err = %v", err)
	}
	if got := len(InScope(decl)); got != 3 {
		t.Errorf("InScope() has %d settings, want 3", got)
	}
	if logged := LogValue(decl).String(); strings.Contains(logged, "pw@") || !strings.Contains(logged, "N=3") {
		t.Errorf("LogValue = %s", logged)
	}
	var b strings.Builder
	if err := WriteTable(&b, decl, nil); err != nil || !strings.Contains(b.String(), "1s - 1h") || !strings.Contains(b.String(), "(required)") {
		t.Errorf("WriteTable = %q, %v", b.String(), err)
	}
}

func TestValidateRefusesBadDeclarations(t *testing.T) {
	var n int
	for _, decl := range [][]Setting{
		{{Name: "N", Default: "x", Min: "1", Max: "2", Dest: &n}},
		{{Name: "N", Default: "5", Min: "1", Max: "2", Dest: &n}},
		{{Name: "N", Default: "1", Min: "1", Max: "2", Dest: &n}, {Name: "N", Default: "1", Min: "1", Max: "2", Dest: &n}},
		{{Name: "N", Default: "1", Dest: new(bool)}},
	} {
		if err := Validate(decl); err == nil {
			t.Errorf("Validate(%+v) = nil", decl)
		}
	}
}
