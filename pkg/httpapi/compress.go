package httpapi

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/labstack/echo/v4"
)

// coding is a content coding the API can send. A cached answer is
// compressed once per coding when it is stored, never per request.
type coding uint8

// The codings, in the server's preference when a client accepts several
// equally: brotli is the smallest for JSON, zstd the cheapest to decode.
const (
	identity coding = iota
	codingBrotli
	codingZstd
	codingGzip
	numCodings
)

// codingNames are the Content-Encoding tokens; identity has none.
var codingNames = [numCodings]string{"", "br", "zstd", "gzip"}

// Compression levels: a fill pays for them once per data version, so they
// may cost more than a per-request compressor could afford, but a cache
// miss still waits for them (brotli's top levels take tens of
// milliseconds on a 35 KB page; level 6 a fraction of one).
const (
	brotliLevel = 6
	gzipLevel   = gzip.BestCompression
)

// zstdEncoder is shared: EncodeAll may be called concurrently.
var zstdEncoder, _ = zstd.NewWriter(nil,
	zstd.WithEncoderLevel(zstd.SpeedBetterCompression),
	zstd.WithEncoderConcurrency(1),
	zstd.WithWindowSize(1<<20), // answers are far smaller; bounds the decoder's memory too
)

var (
	gzipWriters   sync.Pool
	brotliWriters sync.Pool
)

// compress returns body in c.
func compress(c coding, body []byte) []byte {
	switch c {
	case codingZstd:
		return zstdEncoder.EncodeAll(body, make([]byte, 0, len(body)/4))
	case codingGzip:
		var buf bytes.Buffer
		buf.Grow(len(body) / 4)
		w, _ := gzipWriters.Get().(*gzip.Writer)
		if w == nil {
			w, _ = gzip.NewWriterLevel(&buf, gzipLevel)
		} else {
			w.Reset(&buf)
		}
		_, _ = w.Write(body) // a bytes.Buffer does not fail
		_ = w.Close()
		gzipWriters.Put(w)
		return buf.Bytes()
	case codingBrotli:
		var buf bytes.Buffer
		buf.Grow(len(body) / 4)
		w, _ := brotliWriters.Get().(*brotli.Writer)
		if w == nil {
			w = brotli.NewWriterLevel(&buf, brotliLevel)
		} else {
			w.Reset(&buf)
		}
		_, _ = w.Write(body)
		_ = w.Close()
		brotliWriters.Put(w)
		return buf.Bytes()
	}
	return body
}

// representation is one coding of a cached answer, with its header values
// prebuilt so that serving it allocates nothing.
type representation struct {
	etag            []string
	contentEncoding []string // nil for identity
	contentLength   []string
	body            []byte
}

// newRepresentation is body, already in coding c, with its validator: the
// entity tag "tag" for identity, "tag-<coding>" otherwise.
func newRepresentation(c coding, tag string, body []byte) *representation {
	r := &representation{body: body, contentLength: []string{strconv.Itoa(len(body))}}
	if c == identity {
		r.etag = []string{`"` + tag + `"`}
	} else {
		// Each coding is a different byte sequence, so a strong validator of
		// its own: a cache that holds the gzip bytes revalidates them with
		// their tag and is never told its copy matches the brotli one.
		r.etag = []string{`"` + tag + "-" + codingNames[c] + `"`}
		r.contentEncoding = []string{codingNames[c]}
	}
	return r
}

// write answers with r: 304 when the request's preconditions show the
// client holds it (modified may be zero: no Last-Modified), else its bytes
// (none for HEAD). Headers other than the representation's are the
// caller's, set before.
func (r *representation) write(c echo.Context, contentType []string, modified time.Time) error {
	req, h := c.Request(), c.Response().Header()
	h["Etag"] = r.etag
	if notModified(req, r.etag[0], modified) {
		c.Response().WriteHeader(http.StatusNotModified)
		return nil
	}
	h["Content-Type"] = contentType
	h["Content-Length"] = r.contentLength
	if r.contentEncoding != nil {
		h["Content-Encoding"] = r.contentEncoding
	}
	c.Response().WriteHeader(http.StatusOK)
	if req.Method == http.MethodHead {
		return nil
	}
	_, err := c.Response().Write(r.body)
	return err
}

// representations encodes body in the codings of want that are worth
// sending: none below minSize bytes (the headers would outweigh the
// saving), and none that comes out no smaller. identity is always there.
func representations(version int64, body []byte, minSize int, want codingSet) [numCodings]*representation {
	var reps [numCodings]*representation
	tag := "v" + strconv.FormatInt(version, 10)
	reps[identity] = newRepresentation(identity, tag, body)
	if len(body) < minSize {
		return reps
	}
	for c := identity + 1; c < numCodings; c++ {
		if want&(1<<c) == 0 {
			continue
		}
		if z := compress(c, body); len(z) < len(body) {
			reps[c] = newRepresentation(c, tag, z)
		}
	}
	return reps
}

// codingSet is a bit mask of codings.
type codingSet uint8

// allCodings is what a cached entry holds: every client finds its coding.
const allCodings codingSet = 1<<numCodings - 1

// everyCoding stands for "all on offer" to negotiate.
var everyCoding = func() (all [numCodings]*representation) {
	for c := range all {
		all[c] = &representation{}
	}
	return all
}()

// preferred is the one coding a client's Accept-Encoding asks for: all
// that an answer built for this request alone (the cache is off) needs.
func preferred(acceptEncoding string) codingSet {
	return 1 << negotiate(acceptEncoding, &everyCoding)
}

// negotiate picks the coding to send for an Accept-Encoding header among
// the available ones: the highest q-value wins, ties go to the server's
// preference (the order of the coding constants). identity is acceptable
// unless the header refuses it; when the header refuses everything on
// offer, identity is sent anyway (RFC 9110 allows that rather than a 406,
// and a client that cannot read JSON has no use for an error in it).
func negotiate(header string, available *[numCodings]*representation) coding {
	if header == "" {
		return identity
	}
	var (
		q        [numCodings]int // thousandths; -1: not mentioned
		wildcard = -1
	)
	for i := range q {
		q[i] = -1
	}
	for part := range strings.SplitSeq(header, ",") {
		name, params, _ := strings.Cut(part, ";")
		name = strings.TrimSpace(name)
		weight := parseQ(params)
		switch {
		case name == "*":
			wildcard = weight
		case strings.EqualFold(name, "identity"):
			q[identity] = weight
		case strings.EqualFold(name, "x-gzip"): // RFC 9110 12.5.3: the same as gzip
			q[codingGzip] = max(q[codingGzip], weight)
		default:
			for c := identity + 1; c < numCodings; c++ {
				if strings.EqualFold(name, codingNames[c]) {
					q[c] = weight
				}
			}
		}
	}
	for c := range q {
		if q[c] < 0 {
			q[c] = wildcard
		}
	}
	if q[identity] < 0 {
		// Acceptable unless refused, but last: "gzip;q=0.5" asks for gzip.
		q[identity] = 1
	}
	best, bestQ := identity, 0
	for c := identity + 1; c < numCodings; c++ {
		if available[c] != nil && q[c] > bestQ {
			best, bestQ = c, q[c]
		}
	}
	if q[identity] > bestQ {
		return identity
	}
	return best
}

// parseQ returns the q-value of a coding's parameters in thousandths
// (1000 when absent); a malformed one counts as 0, refusing the coding.
func parseQ(params string) int {
	for p := range strings.SplitSeq(params, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		return qValue(strings.TrimSpace(v))
	}
	return 1000
}

// qValue parses RFC 9110's qvalue ("0", "0.5", "1.000") into thousandths.
func qValue(v string) int {
	if v == "" || len(v) > 5 || (v[0] != '0' && v[0] != '1') {
		return 0
	}
	n := int(v[0]-'0') * 1000
	if len(v) == 1 {
		return n
	}
	if v[1] != '.' {
		return 0
	}
	scale := 100
	for i := 2; i < len(v); i++ {
		d := v[i]
		if d < '0' || d > '9' || (n == 1000 && d != '0') {
			return 0
		}
		n += int(d-'0') * scale
		scale /= 10
	}
	return n
}

// acceptEncoding is the request's Accept-Encoding, its lines joined when
// it came in several (rare, and legal).
func acceptEncoding(req *http.Request) string {
	if v := req.Header["Accept-Encoding"]; len(v) > 1 {
		return strings.Join(v, ",")
	}
	return req.Header.Get("Accept-Encoding")
}
