package fake

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"sync"
	"time"
)

// Faults is what can go wrong between a client and the upstream. Pages are
// numbered as the upstream normalises them (?page=0 is page 1). For one page,
// a rate limit is answered before a failure (a proxy in front rejects first),
// then malformed, then truncated. All but truncation fire whether or not the
// page exists, as a proxy's faults would. SetFaults does not validate; use
// Validate for configurations that come from outside.
//
// In JSON, Latency is a Go duration string ("150ms") or a number of
// nanoseconds, and map keys are page numbers as strings:
//
//	{"latency":"100ms","fail_pages":{"3":2},"status":503,
//	 "rate_limit_pages":{"5":1},"retry_after":"2",
//	 "malformed_pages":{"7":true},"truncated_pages":{"8":true},
//	 "count_change_after":4}
type Faults struct {
	// Latency is added to every /character request; a client that gives up
	// (cancels its request) stops the wait.
	Latency time.Duration `json:"latency,omitempty"`
	// FailPages maps a page to how many times to answer Status before
	// succeeding; -1 fails forever.
	FailPages map[int]int `json:"fail_pages,omitempty"`
	// Status is the failure status for FailPages; 0 means 500.
	Status int `json:"status,omitempty"`
	// RateLimitPages maps a page to how many times to answer 429 with
	// Retry-After before succeeding; -1 limits forever.
	RateLimitPages map[int]int `json:"rate_limit_pages,omitempty"`
	// RetryAfter is the 429's Retry-After header; "" means "1".
	RetryAfter string `json:"retry_after,omitempty"`
	// MalformedPages answer 200 with a body that is not valid JSON (a page
	// cut off mid-stream).
	MalformedPages map[int]bool `json:"malformed_pages,omitempty"`
	// TruncatedPages answer 200 with a valid page whose results are cut to
	// half while info still claims the full count.
	TruncatedPages map[int]bool `json:"truncated_pages,omitempty"`
	// CountChangeAfter, when positive, grows the data set by one character
	// (a new highest id, which passes the exact filter) right after that many
	// successful page answers (200 with a page, truncated ones included),
	// once; a crawl then sees info.count change.
	CountChangeAfter int `json:"count_change_after,omitempty"`
}

// MarshalJSON writes Latency as a duration string.
func (f Faults) MarshalJSON() ([]byte, error) {
	type plain Faults
	aux := struct {
		Latency string `json:"latency,omitempty"`
		plain
	}{plain: plain(f)}
	if f.Latency != 0 {
		aux.Latency = f.Latency.String()
	}
	return json.Marshal(aux)
}

// UnmarshalJSON reads Latency as a duration string or nanoseconds, and
// rejects unknown fields: a misspelt fault would otherwise silently not fire.
func (f *Faults) UnmarshalJSON(b []byte) error {
	type plain Faults
	var out Faults
	aux := struct {
		Latency json.RawMessage `json:"latency"`
		*plain
	}{plain: (*plain)(&out)}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&aux); err != nil {
		return err
	}
	if len(aux.Latency) > 0 && string(aux.Latency) != "null" {
		var str string
		var ns int64
		switch {
		case json.Unmarshal(aux.Latency, &str) == nil:
			d, err := time.ParseDuration(str)
			if err != nil {
				return fmt.Errorf("latency: %w", err)
			}
			out.Latency = d
		case json.Unmarshal(aux.Latency, &ns) == nil:
			out.Latency = time.Duration(ns)
		default:
			return errors.New(`latency: want a duration string like "100ms"`)
		}
	}
	*f = out
	return nil
}

// Validate reports a configuration that cannot be meant.
func (f Faults) Validate() error {
	var errs []error
	if f.Latency < 0 {
		errs = append(errs, errors.New("latency must not be negative"))
	}
	if f.Status != 0 && (f.Status < 400 || f.Status > 599) {
		errs = append(errs, fmt.Errorf("status %d is not an error status (400-599)", f.Status))
	}
	if f.CountChangeAfter < 0 {
		errs = append(errs, errors.New("count_change_after must not be negative"))
	}
	for name, m := range map[string]map[int]int{"fail_pages": f.FailPages, "rate_limit_pages": f.RateLimitPages} {
		for page, n := range m {
			if page < 1 || n < -1 {
				errs = append(errs, fmt.Errorf("%s: page %d -> %d: want page >= 1 and count >= -1", name, page, n))
			}
		}
	}
	for name, m := range map[string]map[int]bool{"malformed_pages": f.MalformedPages, "truncated_pages": f.TruncatedPages} {
		for page := range m {
			if page < 1 {
				errs = append(errs, fmt.Errorf("%s: page %d: want page >= 1", name, page))
			}
		}
	}
	return errors.Join(errs...)
}

func (f Faults) clone() Faults {
	f.FailPages = maps.Clone(f.FailPages)
	f.RateLimitPages = maps.Clone(f.RateLimitPages)
	f.MalformedPages = maps.Clone(f.MalformedPages)
	f.TruncatedPages = maps.Clone(f.TruncatedPages)
	return f
}

// answerKind is how one page request is answered.
type answerKind int

const (
	answerNormal answerKind = iota
	answerRateLimited
	answerFailed
	answerMalformed
	answerTruncated
)

type answer struct {
	kind       answerKind
	status     int    // for answerFailed
	retryAfter string // for answerRateLimited
}

// faultState is the configuration plus what it has consumed so far.
type faultState struct {
	mu        sync.Mutex
	cfg       Faults
	failLeft  map[int]int // remaining failures per page; -1 forever
	limitLeft map[int]int // remaining 429s per page; -1 forever
	successes int
	grown     bool
}

func (fs *faultState) set(f Faults) {
	f = f.clone()
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.cfg = f
	fs.failLeft = maps.Clone(f.FailPages)
	fs.limitLeft = maps.Clone(f.RateLimitPages)
	fs.successes = 0
	fs.grown = false
}

func (fs *faultState) get() Faults {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.cfg.clone()
}

func (fs *faultState) latency() time.Duration {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.cfg.Latency
}

// take decides how to answer one request for page, using up one of its
// counted failures if any are left.
func (fs *faultState) take(page int) answer {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if consume(fs.limitLeft, page) {
		ra := fs.cfg.RetryAfter
		if ra == "" {
			ra = "1"
		}
		return answer{kind: answerRateLimited, retryAfter: ra}
	}
	if consume(fs.failLeft, page) {
		st := fs.cfg.Status
		if st == 0 {
			st = http.StatusInternalServerError
		}
		return answer{kind: answerFailed, status: st}
	}
	if fs.cfg.MalformedPages[page] {
		return answer{kind: answerMalformed}
	}
	if fs.cfg.TruncatedPages[page] {
		return answer{kind: answerTruncated}
	}
	return answer{kind: answerNormal}
}

// consume reports whether page has a failure left, using one up.
func consume(left map[int]int, page int) bool {
	switch n := left[page]; {
	case n < 0:
		return true
	case n > 0:
		left[page] = n - 1
		return true
	}
	return false
}

// succeeded records one successful page answer and reports whether the data
// set must grow now (exactly once per configuration).
func (fs *faultState) succeeded() bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.cfg.CountChangeAfter <= 0 || fs.grown {
		return false
	}
	fs.successes++
	fs.grown = fs.successes >= fs.cfg.CountChangeAfter
	return fs.grown
}
