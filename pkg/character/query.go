package character

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Error codes. The HTTP layer maps each to a status in one table; everything
// else only ever sees the code.
const (
	EINVALID     = "invalid"     // a client-supplied value is malformed or out of range
	ENOTFOUND    = "not_found"   // the resource does not exist
	EUNAVAILABLE = "unavailable" // a dependency (the database) cannot answer now
	ERATELIMITED = "rate_limited"
	EINTERNAL    = "internal"
)

// Error is a domain error whose Message is safe to show to clients. Err
// keeps the cause for logs and is never shown.
type Error struct {
	Code    string
	Param   string // the offending request parameter, for EINVALID
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Message + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with a formatted client-safe message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// Invalid reports a bad value of request parameter param.
func Invalid(param, format string, args ...any) *Error {
	return &Error{Code: EINVALID, Param: param, Message: fmt.Sprintf(format, args...)}
}

// Sort fields and orders a client may ask for. The store maps each sort
// name to a column through its own whitelist.
const (
	SortID      = "id"
	SortName    = "name"
	SortCreated = "created"

	OrderAsc  = "asc"
	OrderDesc = "desc"
)

// Paging bounds.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
	// MaxPage keeps (page-1)*page_size from overflowing; a larger page is
	// refused as invalid, any page up to it past the data is out of range.
	MaxPage = math.MaxInt / MaxPageSize
)

// Genders a list may be filtered by, as the filter spells them (any case is
// accepted). The upstream writes them Female, Male, Genderless, unknown.
const (
	GenderFemale     = "female"
	GenderMale       = "male"
	GenderGenderless = "genderless"
	GenderUnknown    = "unknown"
)

// MaxFilterLength bounds a text filter, in characters: longer names than
// any character has are a mistake or abuse, and each costs index work.
const MaxFilterLength = 100

// ListQuery is a validated, normalised request for one page of characters.
type ListQuery struct {
	Sort     string
	Order    string
	Page     int
	PageSize int
	Filter   Filter
}

// Filter narrows a listing; the zero Filter keeps every character. Name,
// Origin and Location match a case-insensitive substring of the character's
// name, origin name and location name (as the upstream's name filter does);
// Gender is one of the Gender constants, compared case-insensitively.
type Filter struct {
	Name     string
	Origin   string
	Location string
	Gender   string
}

// IsZero reports whether f keeps every character.
func (f Filter) IsZero() bool { return f == Filter{} }

// DefaultListQuery is the query an empty query string means.
func DefaultListQuery() ListQuery {
	return ListQuery{Sort: SortID, Order: OrderAsc, Page: 1, PageSize: DefaultPageSize}
}

// The parameters ParseListQuery understands. Others are ignored so that
// clients and proxies may add their own (cache busters, tracking tags).
var listParams = [...]string{"sort", "order", "page", "page_size", "name", "origin", "location", "gender"}

// ParseListQuery validates v into a ListQuery, filling defaults for missing
// or empty parameters. A parameter given twice is refused rather than
// silently picking one: a client sending page=1&page=2 has a bug worth seeing.
func ParseListQuery(v url.Values) (ListQuery, error) {
	q := DefaultListQuery()
	for _, name := range listParams {
		vals := v[name]
		if len(vals) == 0 || (len(vals) == 1 && vals[0] == "") {
			continue
		}
		if len(vals) > 1 {
			return ListQuery{}, Invalid(name, "parameter %q is given %d times; give it once", name, len(vals))
		}
		s := vals[0]
		switch name {
		case "sort":
			switch s {
			case SortID, SortName, SortCreated:
				q.Sort = s
			default:
				return ListQuery{}, Invalid(name, "parameter \"sort\" must be one of id, name, created")
			}
		case "order":
			switch s {
			case OrderAsc, OrderDesc:
				q.Order = s
			default:
				return ListQuery{}, Invalid(name, "parameter \"order\" must be asc or desc")
			}
		case "page":
			n, ok := parseInt(s)
			if !ok || n < 1 || n > MaxPage {
				return ListQuery{}, Invalid(name, "parameter \"page\" must be an integer between 1 and %d", MaxPage)
			}
			q.Page = n
		case "page_size":
			n, ok := parseInt(s)
			if !ok || n < 1 || n > MaxPageSize {
				return ListQuery{}, Invalid(name, "parameter \"page_size\" must be an integer between 1 and %d", MaxPageSize)
			}
			q.PageSize = n
		case "name", "origin", "location":
			if err := checkFilterText(name, s); err != nil {
				return ListQuery{}, err
			}
			switch name {
			case "name":
				q.Filter.Name = s
			case "origin":
				q.Filter.Origin = s
			default:
				q.Filter.Location = s
			}
		case "gender":
			switch g := strings.ToLower(s); g {
			case GenderFemale, GenderMale, GenderGenderless, GenderUnknown:
				q.Filter.Gender = g
			default:
				return ListQuery{}, Invalid(name, "parameter \"gender\" must be one of female, male, genderless, unknown")
			}
		}
	}
	return q, nil
}

// checkFilterText refuses a text filter the database could not compare,
// that is unreasonably long, or that no index could serve: invalid UTF-8,
// control characters (a NUL byte cannot even be sent to Postgres), more
// than MaxFilterLength characters, and no MinFilterWord letters or digits
// in a row.
func checkFilterText(param, s string) error {
	if !utf8.ValidString(s) {
		return Invalid(param, "parameter %q must be valid UTF-8 text", param)
	}
	if n := utf8.RuneCountInString(s); n > MaxFilterLength {
		return Invalid(param, "parameter %q must be at most %d characters (got %d)", param, MaxFilterLength, n)
	}
	if strings.ContainsFunc(s, unicode.IsControl) {
		return Invalid(param, "parameter %q must not contain control characters", param)
	}
	if !hasWord(s, MinFilterWord) {
		return Invalid(param, "parameter %q must contain at least %d letters or digits in a row (shorter text cannot be looked up in an index)", param, MinFilterWord)
	}
	return nil
}

// MinFilterWord is the shortest run of letters or digits a text filter must
// contain. The database finds substrings through trigram indexes; text
// without three such characters in a row gives no trigram, and would make
// it read every row instead.
const MinFilterWord = 3

// hasWord reports whether s holds n letters or digits in a row.
func hasWord(s string, n int) bool {
	run := 0
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			if run++; run >= n {
				return true
			}
		} else {
			run = 0
		}
	}
	return false
}

// parseInt accepts plain decimal digits only: no sign, no spaces, no
// exponent (leading zeros are fine). Values too large for an int are
// refused. ParseID follows the same rule.
func parseInt(s string) (int, bool) {
	if !isDigits(s) {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// isDigits reports whether s is one or more ASCII decimal digits.
func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// MaxID is the largest id the schema can hold (a bigint column).
const MaxID = math.MaxInt64

// ParseID validates a character id path parameter. Anything that is not a
// decimal integer is invalid; an integer that no character can have (zero,
// negative, beyond the column's range) is simply not found.
func ParseID(s string) (int, error) {
	if !isDigits(s) {
		return 0, Invalid("id", "path parameter \"id\" must be a decimal integer (digits only)")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 || n > MaxID {
		return 0, Errorf(ENOTFOUND, "character %s not found", s)
	}
	return int(n), nil
}

// Key is the normalised form of q: equal queries, however spelled (order
// of parameters, defaults left out, leading zeros), have equal keys. Text
// filters are kept as written (only their case-insensitive comparison in
// the database decides what they match); Key is also a valid query string.
func (q ListQuery) Key() string {
	var b strings.Builder
	b.Grow(48)
	b.WriteString("sort=")
	b.WriteString(q.Sort)
	b.WriteString("&order=")
	b.WriteString(q.Order)
	b.WriteString("&page=")
	b.WriteString(strconv.Itoa(q.Page))
	b.WriteString("&page_size=")
	b.WriteString(strconv.Itoa(q.PageSize))
	// Filters only when set, so unfiltered keys (and their links) stay short.
	for _, f := range [...]struct{ name, value string }{
		{"name", q.Filter.Name}, {"origin", q.Filter.Origin}, {"location", q.Filter.Location}, {"gender", q.Filter.Gender},
	} {
		if f.value != "" {
			b.WriteString("&")
			b.WriteString(f.name)
			b.WriteString("=")
			b.WriteString(url.QueryEscape(f.value))
		}
	}
	return b.String()
}

// WithPage returns q for another page, for neighbour links.
func (q ListQuery) WithPage(p int) ListQuery {
	q.Page = p
	return q
}

// Offset is the number of rows before q's page.
func (q ListQuery) Offset() int { return (q.Page - 1) * q.PageSize }

// Snapshot says which data a read saw: the data version (it changes with
// every ingest that changes a row) and when that version was committed.
// Read in the same statement as the rows, it can serve as their validator.
type Snapshot struct {
	Version  int64
	Modified time.Time
}

// Page is one page of a sorted listing plus the facts a client needs to
// walk it, and the Snapshot it was read at.
type Page struct {
	Query      ListQuery
	TotalCount int
	TotalPages int
	HasPrev    bool
	HasNext    bool
	OutOfRange bool
	Results    []Character
	Snapshot
}

// NewPage computes the paging facts for q over total rows read at snap.
func NewPage(q ListQuery, total int, results []Character, snap Snapshot) Page {
	pages := 0
	if total > 0 {
		pages = (total + q.PageSize - 1) / q.PageSize
	}
	// Page 1 of an empty set is in range (it is simply empty); every other
	// page past the last is not.
	outOfRange := q.Page > pages && q.Page > 1
	if results == nil {
		results = []Character{}
	}
	return Page{
		Query:      q,
		TotalCount: total,
		TotalPages: pages,
		HasPrev:    q.Page > 1 && !outOfRange,
		HasNext:    q.Page < pages,
		OutOfRange: outOfRange,
		Results:    results,
		Snapshot:   snap,
	}
}
