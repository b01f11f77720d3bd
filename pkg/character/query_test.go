package character_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/rickmorty/rickmorty/pkg/character"
)

func TestParseListQueryDefaultsAndValues(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  character.ListQuery
	}{
		{"", character.ListQuery{Sort: "id", Order: "asc", Page: 1, PageSize: 20}},
		{"sort=name&order=desc&page=3&page_size=100", character.ListQuery{Sort: "name", Order: "desc", Page: 3, PageSize: 100}},
		{"sort=created&page_size=1", character.ListQuery{Sort: "created", Order: "asc", Page: 1, PageSize: 1}},
		{"page=007", character.ListQuery{Sort: "id", Order: "asc", Page: 7, PageSize: 20}},
		{"sort=&order=&page=&page_size=", character.ListQuery{Sort: "id", Order: "asc", Page: 1, PageSize: 20}},
		{"unknown=1&utm_source=x", character.ListQuery{Sort: "id", Order: "asc", Page: 1, PageSize: 20}},
		{"page=999999999999", character.ListQuery{Sort: "id", Order: "asc", Page: 999999999999, PageSize: 20}},
		{"name=Rick+S&origin=Earth+(C-137)&location=Citadel&gender=FeMale&sort=name",
			character.ListQuery{Sort: "name", Order: "asc", Page: 1, PageSize: 20, Filter: character.Filter{
				Name: "Rick S", Origin: "Earth (C-137)", Location: "Citadel", Gender: "female"}}},
		{"name=&origin=&location=&gender=", character.ListQuery{Sort: "id", Order: "asc", Page: 1, PageSize: 20}},
		{"gender=unknown", character.ListQuery{Sort: "id", Order: "asc", Page: 1, PageSize: 20, Filter: character.Filter{Gender: "unknown"}}},
		{"gender=GENDERLESS", character.ListQuery{Sort: "id", Order: "asc", Page: 1, PageSize: 20, Filter: character.Filter{Gender: "genderless"}}},
		{"name=%25_%5Cabc", character.ListQuery{Sort: "id", Order: "asc", Page: 1, PageSize: 20, Filter: character.Filter{Name: `%_\abc`}}},
		{"origin=C-137", character.ListQuery{Sort: "id", Order: "asc", Page: 1, PageSize: 20, Filter: character.Filter{Origin: "C-137"}}},
		{"name=Z%C3%B6%C3%AB", character.ListQuery{Sort: "id", Order: "asc", Page: 1, PageSize: 20, Filter: character.Filter{Name: "Zöë"}}},
		{"name=" + strings.Repeat("é", character.MaxFilterLength), character.ListQuery{Sort: "id", Order: "asc", Page: 1, PageSize: 20,
			Filter: character.Filter{Name: strings.Repeat("é", character.MaxFilterLength)}}},
	} {
		v, _ := url.ParseQuery(tc.query)
		got, err := character.ParseListQuery(v)
		if err != nil {
			t.Errorf("%q: %v", tc.query, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%q = %+v, want %+v", tc.query, got, tc.want)
		}
	}
}

func TestParseListQueryRejectsAndNamesTheParameter(t *testing.T) {
	for _, tc := range []struct{ query, param string }{
		{"page=0", "page"},
		{"page=-1", "page"},
		{"page=abc", "page"},
		{"page=1.5", "page"},
		{"page=+1", "page"},
		{"page= 1", "page"},
		{"page=1e3", "page"},
		{"page=99999999999999999999999", "page"},
		{"page=1&page=2", "page"},
		{"page_size=0", "page_size"},
		{"page_size=101", "page_size"},
		{"page_size=abc", "page_size"},
		{"sort=foo", "sort"},
		{"sort=ID", "sort"},
		{"sort=name&sort=id", "sort"},
		{"order=up", "order"},
		{"order=DESC", "order"},
		{"gender=f", "gender"},
		{"gender=woman", "gender"},
		{"gender=male&gender=female", "gender"},
		{"name=" + strings.Repeat("a", character.MaxFilterLength+1), "name"},
		{"origin=" + strings.Repeat("é", character.MaxFilterLength+1), "origin"},
		{"location=abc%00d", "location"},
		{"name=abc%09d", "name"},
		{"name=%ff%fe", "name"},
		{"name=abc&name=bcd", "name"},
		{"name=ri", "name"},
		{"name=a", "name"},
		{"origin=%25%25%25", "origin"},
		{"location=a+b+c", "location"},
		{"name=Mr.+X", "name"},
		{"name=ab-cd", "name"},
	} {
		v, _ := url.ParseQuery(tc.query)
		_, err := character.ParseListQuery(v)
		if got, want := character.ErrorCode(err), character.EINVALID; got != want {
			t.Errorf("%q: code %q, want %q", tc.query, got, want)
			continue
		}
		var e *character.Error
		if !errors.As(err, &e) {
			t.Errorf("%q: error %v is not a *character.Error", tc.query, err)
			continue
		}
		if got, want := e.Param, tc.param; got != want {
			t.Errorf("%q: param %q, want %q", tc.query, got, want)
		}
		if !strings.Contains(e.Message, `"`+tc.param+`"`) {
			t.Errorf("%q: message %q does not name %q", tc.query, e.Message, tc.param)
		}
	}
}

func TestKeyIsNormalised(t *testing.T) {
	parse := func(s string) character.ListQuery {
		v, _ := url.ParseQuery(s)
		q, err := character.ParseListQuery(v)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		return q
	}
	a := parse("page_size=20&order=asc&x=1&page=01")
	b := parse("sort=id")
	if a.Key() != b.Key() {
		t.Errorf("keys differ for equal queries: %q vs %q", a.Key(), b.Key())
	}
	if parse("page=2").Key() == b.Key() {
		t.Error("different pages share a key")
	}
	if got, want := parse("gender=Male&name=a%26bcd&page=2").Key(), "sort=id&order=asc&page=2&page_size=20&name=a%26bcd&gender=male"; got != want {
		t.Errorf("filtered key = %q, want %q", got, want)
	}
	if parse("gender=male").Key() != parse("gender=MALE").Key() {
		t.Error("one gender spelled in two cases has two keys")
	}
	for _, other := range []string{"name=xyz", "origin=xyz", "location=xyz", "gender=male"} {
		if parse(other).Key() == b.Key() {
			t.Errorf("%s shares the unfiltered key", other)
		}
	}
	if parse("name=xyz").Key() == parse("origin=xyz").Key() {
		t.Error("the same text filtering two fields shares a key")
	}
}

func TestNewPage(t *testing.T) {
	q := func(page, size int) character.ListQuery {
		return character.ListQuery{Sort: "id", Order: "asc", Page: page, PageSize: size}
	}
	for _, tc := range []struct {
		name                   string
		q                      character.ListQuery
		total                  int
		pages                  int
		prev, next, outOfRange bool
	}{
		{"first of several", q(1, 10), 25, 3, false, true, false},
		{"middle", q(2, 10), 25, 3, true, true, false},
		{"last partial", q(3, 10), 25, 3, true, false, false},
		{"past the last", q(4, 10), 25, 3, false, false, true},
		{"exact fit last", q(2, 10), 20, 2, true, false, false},
		{"empty set page 1", q(1, 10), 0, 0, false, false, false},
		{"empty set page 2", q(2, 10), 0, 0, false, false, true},
	} {
		p := character.NewPage(tc.q, tc.total, nil, character.Snapshot{Version: 7})
		if p.TotalPages != tc.pages || p.HasPrev != tc.prev || p.HasNext != tc.next || p.OutOfRange != tc.outOfRange {
			t.Errorf("%s: pages=%d prev=%v next=%v out=%v; want %d %v %v %v", tc.name,
				p.TotalPages, p.HasPrev, p.HasNext, p.OutOfRange, tc.pages, tc.prev, tc.next, tc.outOfRange)
		}
		if p.Results == nil {
			t.Errorf("%s: nil results would encode as null", tc.name)
		}
	}
}

func TestParseID(t *testing.T) {
	for _, tc := range []struct {
		in   string
		id   int
		code string
	}{
		{"1", 1, ""},
		{"0042", 42, ""},
		{"0", 0, character.ENOTFOUND},
		// One rule for integers, as for page and page_size: digits only.
		{"-3", 0, character.EINVALID},
		{"+1", 0, character.EINVALID},
		{" 1", 0, character.EINVALID},
		{"1e3", 0, character.EINVALID},
		{"2147483648", 2147483648, ""}, // past int4: ids are 64-bit
		{"9223372036854775808", 0, character.ENOTFOUND},
		{"99999999999999999999999", 0, character.ENOTFOUND},
		{"abc", 0, character.EINVALID},
		{"1.5", 0, character.EINVALID},
		{"", 0, character.EINVALID},
		{"1 ", 0, character.EINVALID},
	} {
		id, err := character.ParseID(tc.in)
		if got := character.ErrorCode(err); got != tc.code || id != tc.id {
			t.Errorf("ParseID(%q) = %d, %q; want %d, %q", tc.in, id, got, tc.id, tc.code)
		}
	}
}

// FuzzParseListQuery checks that any query string either parses into a
// query within bounds whose key parses back to itself, or fails with
// EINVALID naming a known parameter. The seeds run in every go test.
func FuzzParseListQuery(f *testing.F) {
	for _, s := range []string{
		"", "sort=name&order=desc&page=2&page_size=5", "page=0", "page_size=101", "sort=foo", "order=up",
		"page=abc", "page=1&page=2", "page=99999999999999999999", "page=%zz", "page_size=-1", "page=+5",
		"sort=created&page=1e3", "a=b&c", ";page=2", "page=\x00", "page_size=100&page=92233720368547758",
		"name=rick&gender=Male", "origin=%26page%3D2abc&location=%3D%3Dabc", "name=%25%5Fabc", "gender=UNKNOWN&name=+abc", "name=ab",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return // the HTTP layer answers 422 for undecodable query strings
		}
		q, err := character.ParseListQuery(v)
		if err != nil {
			var e *character.Error
			if !errors.As(err, &e) || e.Code != character.EINVALID {
				t.Fatalf("%q: error %v is not EINVALID", raw, err)
			}
			switch e.Param {
			case "sort", "order", "page", "page_size", "name", "origin", "location", "gender":
			default:
				t.Fatalf("%q: error names %q", raw, e.Param)
			}
			return
		}
		if q.Page < 1 || q.PageSize < 1 || q.PageSize > character.MaxPageSize || q.Offset() < 0 {
			t.Fatalf("%q: out-of-bounds query %+v", raw, q)
		}
		back, err := url.ParseQuery(q.Key())
		if err != nil {
			t.Fatalf("%q: key %q does not parse: %v", raw, q.Key(), err)
		}
		q2, err := character.ParseListQuery(back)
		if err != nil || q2 != q {
			t.Fatalf("%q: key %q parses to %+v, %v; want %+v", raw, q.Key(), q2, err, q)
		}
	})
}
