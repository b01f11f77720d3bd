package fake

import (
	"net/url"
	"regexp"
	"strings"

	"github.com/rickmorty/rickmorty/pkg/upstream"
)

// filterKeys are the upstream's character filters, in the order the fake
// writes them into next/prev links. There is no origin filter.
var filterKeys = [...]string{"name", "status", "species", "type", "gender"}

// filter is one server-side filter. The upstream turns the value into a
// case-insensitive, unanchored regular expression with punctuation escaped,
// so it matches substrings: species=human returns Human and Humanoid.
type filter struct {
	key, value string
	re         *regexp.Regexp // nil: the value cannot match anything
}

// parseFilters reads the filters present in q. An empty value filters nothing
// (its expression matches every string), so it is dropped, and it is not
// carried into links either.
func parseFilters(q url.Values) []filter {
	var fs []filter
	for _, key := range filterKeys {
		v := q.Get(key)
		if v == "" {
			continue
		}
		pattern := regexp.QuoteMeta(v)
		// The upstream's one special case: a value starting with "male" is
		// anchored, so gender=male does not return Female. The check is
		// case-sensitive as documented; gender=Male is a plain substring
		// match and does return Female, a superset, which is the safe way for
		// a fake to be wrong.
		if strings.HasPrefix(v, "male") {
			pattern = "^" + pattern
		}
		// Compile fails only on invalid UTF-8; such a value matches nothing.
		re, _ := regexp.Compile("(?i)" + pattern)
		fs = append(fs, filter{key: key, value: v, re: re})
	}
	return fs
}

func (f filter) match(c *upstream.Character) bool {
	if f.re == nil {
		return false
	}
	var field string
	switch f.key {
	case "name":
		field = c.Name
	case "status":
		field = c.Status
	case "species":
		field = c.Species
	case "type":
		field = c.Type
	case "gender":
		field = c.Gender
	}
	return f.re.MatchString(field)
}

// applyFilters returns the characters every filter matches, keeping order.
func applyFilters(chars []upstream.Character, fs []filter) []upstream.Character {
	if len(fs) == 0 {
		return chars
	}
	var out []upstream.Character
next:
	for i := range chars {
		for _, f := range fs {
			if !f.match(&chars[i]) {
				continue next
			}
		}
		out = append(out, chars[i])
	}
	return out
}

// linkQuery renders the filters for a next/prev link, e.g. "&species=human".
func linkQuery(fs []filter) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString("&" + f.key + "=" + url.QueryEscape(f.value))
	}
	return b.String()
}
