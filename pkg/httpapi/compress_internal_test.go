package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rickmorty/rickmorty/pkg/character"
	"github.com/rickmorty/rickmorty/pkg/httpapi/apitest"
)

func TestNegotiateOnlyPicksWhatIsOnOffer(t *testing.T) {
	all := representations(1, []byte(strings.Repeat(`{"name":"Rick Sanchez"},`, 200)), 1, allCodings)
	gzipOnly := all
	gzipOnly[codingBrotli], gzipOnly[codingZstd] = nil, nil
	none := all
	none[codingBrotli], none[codingZstd], none[codingGzip] = nil, nil, nil
	for _, tc := range []struct {
		header string
		offer  *[numCodings]*representation
		want   coding
	}{
		{"br, gzip", &all, codingBrotli},
		{"br, gzip", &gzipOnly, codingGzip},
		{"br", &gzipOnly, identity},
		{"br, gzip, zstd", &none, identity},
		{"zstd;q=1, br;q=0.999", &all, codingZstd},
		{"gzip;q=0.001", &all, codingGzip},
		{"gzip;q=0.001, identity;q=0.002", &all, identity},
		{"gzip;q=0", &all, identity},
		{"gzip; q=0.5; foo=bar", &all, codingGzip},
		{",,gzip,,", &all, codingGzip},
		{"x-gzip", &all, codingGzip},
		{"x-gzip;q=0.5, br;q=0.4", &all, codingGzip},
	} {
		if got := negotiate(tc.header, tc.offer); got != tc.want {
			t.Errorf("negotiate(%q) = %q, want %q", tc.header, codingNames[got], codingNames[tc.want])
		}
	}
}

func TestQValue(t *testing.T) {
	for v, want := range map[string]int{
		"0": 0, "1": 1000, "0.5": 500, "0.25": 250, "0.125": 125, "1.0": 1000, "1.000": 1000, "0.": 0,
		"1.5": 0, "2": 0, "": 0, "0.1234": 0, "abc": 0, "-1": 0, "0.x": 0, ".5": 0,
	} {
		if got := qValue(v); got != want {
			t.Errorf("qValue(%q) = %d, want %d", v, got, want)
		}
	}
}

func TestNegotiateAllocatesNothing(t *testing.T) {
	all := representations(1, []byte(strings.Repeat("x", 4096)), 1, allCodings)
	if n := testing.AllocsPerRun(100, func() { negotiate("gzip, deflate, br, zstd", &all) }); n != 0 {
		t.Errorf("negotiate allocates %v times per call", n)
	}
}

// BenchmarkCompress is what a cache fill of a 100-row page pays per coding
// (once per data version and key): the levels are chosen against it.
func BenchmarkCompress(b *testing.B) {
	body := appendPage(nil, benchPage(100))
	for c := identity + 1; c < numCodings; c++ {
		b.Run(codingNames[c], func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			var n int
			for b.Loop() {
				n = len(compress(c, body))
			}
			b.ReportMetric(float64(n), "bytes-out")
			b.ReportMetric(float64(len(body)), "bytes-in")
		})
	}
}

// benchPage is a full page of characters like the upstream's.
func benchPage(n int) character.Page {
	q := character.DefaultListQuery()
	q.PageSize = n
	return character.NewPage(q, 10*n, apitest.Characters(n), character.Snapshot{Version: 1})
}

func TestAcceptEncodingJoinsItsLines(t *testing.T) {
	req := httptest.NewRequest(http.MethodGet, "/characters", nil)
	req.Header.Add("Accept-Encoding", "gzip;q=0.5")
	req.Header.Add("Accept-Encoding", "br")
	all := representations(1, []byte(strings.Repeat("rick ", 1000)), 1, allCodings)
	if got := negotiate(acceptEncoding(req), &all); got != codingBrotli {
		t.Errorf("two Accept-Encoding lines: %q, want br", codingNames[got])
	}
}
