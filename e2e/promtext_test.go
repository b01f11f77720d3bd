package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// sample is one line of the Prometheus text exposition format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// exposition is a parsed /metrics answer.
type exposition struct {
	samples []sample
	types   map[string]string // metric family -> counter, gauge, histogram...
}

// find returns the samples named name whose labels include every given
// name=value pair (pairs as alternating strings).
func (e exposition) find(name string, labels ...string) []sample {
	var out []sample
next:
	for _, s := range e.samples {
		if s.name != name {
			continue
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if s.labels[labels[i]] != labels[i+1] {
				continue next
			}
		}
		out = append(out, s)
	}
	return out
}

// value returns the single sample matching name and labels.
func (e exposition) value(name string, labels ...string) (float64, error) {
	m := e.find(name, labels...)
	if len(m) != 1 {
		return 0, fmt.Errorf("%d samples of %s%v, want 1", len(m), name, labels)
	}
	return m[0].value, nil
}

// metrics GETs and parses a Prometheus /metrics endpoint.
func (s *system) metrics(t testing.TB, u string) exposition {
	t.Helper()
	r := s.get(t, u)
	if r.status != http.StatusOK {
		t.Fatalf("GET %s: %s", u, r)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") && !strings.HasPrefix(ct, "application/openmetrics-text") {
		t.Fatalf("GET %s: Content-Type %q is not a Prometheus exposition format", u, ct)
	}
	e, err := parseExposition(r.body)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return e
}

// parseExposition reads the text format (version 0.0.4, and the parts of
// OpenMetrics that look the same).
func parseExposition(b []byte) (exposition, error) {
	e := exposition{types: map[string]string{}}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "#") {
			f := strings.Fields(line)
			if len(f) >= 4 && f[1] == "TYPE" {
				e.types[f[2]] = f[3]
			}
			continue
		}
		s, err := parseSample(line)
		if err != nil {
			return e, fmt.Errorf("line %d %q: %w", n, line, err)
		}
		e.samples = append(e.samples, s)
	}
	return e, sc.Err()
}

func parseSample(line string) (sample, error) {
	s := sample{labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i <= 0 {
		return s, fmt.Errorf("no metric name")
	}
	s.name, line = line[:i], line[i:]
	if line[0] == '{' {
		line = line[1:]
		for {
			line = strings.TrimLeft(line, " ,")
			if strings.HasPrefix(line, "}") {
				line = line[1:]
				break
			}
			eq := strings.IndexByte(line, '=')
			if eq <= 0 || len(line) < eq+2 || line[eq+1] != '"' {
				return s, fmt.Errorf("bad label")
			}
			name := strings.TrimSpace(line[:eq])
			rest := line[eq+2:]
			var val strings.Builder
			j := 0
			for ; j < len(rest) && rest[j] != '"'; j++ {
				if rest[j] == '\\' && j+1 < len(rest) {
					j++
					switch rest[j] {
					case 'n':
						val.WriteByte('\n')
					default:
						val.WriteByte(rest[j])
					}
					continue
				}
				val.WriteByte(rest[j])
			}
			if j >= len(rest) {
				return s, fmt.Errorf("unterminated label value")
			}
			s.labels[name] = val.String()
			line = rest[j+1:]
		}
	}
	f := strings.Fields(line)
	if len(f) < 1 {
		return s, fmt.Errorf("no value")
	}
	switch f[0] {
	case "+Inf":
		s.value = math.Inf(1)
	case "-Inf":
		s.value = math.Inf(-1)
	case "NaN":
		s.value = math.NaN()
	default:
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return s, err
		}
		s.value = v
	}
	return s, nil
}

func TestParseExposition(t *testing.T) {
	e, err := parseExposition([]byte(`# HELP x_total A counter.
# TYPE x_total counter
x_total{code="200",path="a\"b"} 3
x_total{code="500"} 1e+00
y 2.5
z_bucket{le="+Inf"} 7
`))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := e.value("x_total", "code", "200"); err != nil || v != 3 {
		t.Errorf("x_total{code=200} = %v, %v", v, err)
	}
	if m := e.find("x_total", "path", `a"b`); len(m) != 1 {
		t.Errorf("escaped label: %v", m)
	}
	if v, _ := e.value("y"); v != 2.5 {
		t.Errorf("y = %v", v)
	}
	if v, _ := e.value("z_bucket", "le", "+Inf"); v != 7 {
		t.Errorf("z_bucket = %v", v)
	}
	if e.types["x_total"] != "counter" {
		t.Errorf("types = %v", e.types)
	}
}
