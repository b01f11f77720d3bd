package httpapi

import (
	"strconv"
	"unicode/utf8"

	"github.com/rickmorty/rickmorty/pkg/character"
)

// The response bodies are appended by hand: on an uncached request,
// reflection-based encoding/json was most of the API's own CPU and
// allocations. encode_test.go checks the output against encoding/json.

const createdLayout = "2006-01-02T15:04:05.000Z07:00" // the upstream's own: UTC with milliseconds

func appendPage(b []byte, p character.Page) []byte {
	b = append(b, `{"page":`...)
	b = strconv.AppendInt(b, int64(p.Query.Page), 10)
	b = append(b, `,"page_size":`...)
	b = strconv.AppendInt(b, int64(p.Query.PageSize), 10)
	b = append(b, `,"total_count":`...)
	b = strconv.AppendInt(b, int64(p.TotalCount), 10)
	b = append(b, `,"total_pages":`...)
	b = strconv.AppendInt(b, int64(p.TotalPages), 10)
	b = append(b, `,"has_prev":`...)
	b = strconv.AppendBool(b, p.HasPrev)
	b = append(b, `,"has_next":`...)
	b = strconv.AppendBool(b, p.HasNext)
	b = append(b, `,"out_of_range":`...)
	b = strconv.AppendBool(b, p.OutOfRange)
	b = append(b, `,"results":[`...)
	for i, c := range p.Results {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendCharacter(b, c)
	}
	return append(b, "]}"...)
}

func appendCharacter(b []byte, c character.Character) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, int64(c.ID), 10)
	b = appendField(b, "name", c.Name)
	b = appendField(b, "status", c.Status)
	b = appendField(b, "species", c.Species)
	b = appendField(b, "type", c.Type)
	b = appendField(b, "gender", c.Gender)
	b = appendField(b, "origin", c.OriginName)
	b = appendField(b, "location", c.LocationName)
	b = appendField(b, "image", c.Image)
	b = appendField(b, "url", c.URL)
	b = append(b, `,"created":"`...)
	b = c.Created.UTC().AppendFormat(b, createdLayout)
	return append(b, `"}`...)
}

func appendField(b []byte, name, value string) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendString(b, value)
}

const hex = "0123456789abcdef"

// appendString appends s as a JSON string with the escaping encoding/json
// uses: quotes, backslashes and control characters; <, > and & as \u00XX so
// a body can never be read as HTML; U+2028 and U+2029, which JavaScript
// treats as line ends; invalid UTF-8 (which Postgres never returns) as U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
