package httpapi_test

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var pageRefs = regexp.MustCompile(`(?:src|href)="([^"]*)"`)

// docsAssets returns the asset URLs the /docs page names, by file name.
func docsAssets(t *testing.T, page []byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range pageRefs.FindAllSubmatch(page, -1) {
		ref := string(m[1])
		if ref == "openapi.json" { // the <noscript> link
			continue
		}
		if !strings.HasPrefix(ref, "docs/assets/") || strings.Contains(ref, "//") {
			t.Errorf("the page refers to %q: not one of its own assets (relative, under docs/assets/)", ref)
			continue
		}
		out[ref[strings.LastIndex(ref, "/")+1:]] = "/" + ref
	}
	return out
}

func TestDocsPage(t *testing.T) {
	t.Parallel()
	e := setup(t, options{})
	r := e.raw(http.MethodGet, "/docs", map[string]string{"Accept-Encoding": "gzip"})
	if r.status != http.StatusOK {
		t.Fatalf("GET /docs = %d: %s", r.status, r.body)
	}
	for k, want := range map[string]string{
		"Content-Type":           "text/html; charset=utf-8",
		"Cache-Control":          "no-cache",
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy":        "no-referrer",
	} {
		if got := r.header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	csp := r.header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "img-src 'self' data:", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want+";") && !strings.HasSuffix(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	for _, never := range []string{"unsafe-inline", "unsafe-eval", "http:", "https:", "*"} {
		if strings.Contains(csp, never) {
			t.Errorf("CSP %q allows %q", csp, never)
		}
	}
	// No inline script: every <script> loads a file.
	if n, m := strings.Count(string(r.body), "<script"), strings.Count(string(r.body), "<script src="); n != m || n == 0 {
		t.Errorf("%d scripts, %d of them with src: %s", n, m, r.body)
	}
	assets := docsAssets(t, r.body)
	for _, name := range []string{"swagger-ui-bundle.js", "swagger-ui.css", "init.js", "favicon-32x32.png"} {
		if assets[name] == "" {
			t.Errorf("the page does not load %s: %s", name, r.body)
		}
	}

	tag := r.header.Get("ETag")
	if nm := e.raw(http.MethodGet, "/docs", map[string]string{"If-None-Match": tag}); nm.status != http.StatusNotModified || len(nm.body) != 0 {
		t.Errorf("If-None-Match %s: %d with %d bytes", tag, nm.status, len(nm.body))
	}
	if h := e.raw(http.MethodHead, "/docs", nil); h.status != http.StatusOK || len(h.body) != 0 ||
		h.header.Get("Content-Length") != r.header.Get("Content-Length") || h.header.Get("Content-Security-Policy") != csp {
		t.Errorf("HEAD /docs = %d, %d bytes, headers %v", h.status, len(h.body), h.header)
	}
	decodeProblem(t, e.get("/docs/nope"), http.StatusNotFound)
	decodeProblem(t, e.do(http.MethodPost, "/docs", nil), http.StatusMethodNotAllowed)
}

func TestDocsAssetsAreTheVendoredFilesCompressedOnceAndCachedForever(t *testing.T) {
	t.Parallel()
	e := setup(t, options{})
	assets := docsAssets(t, e.get("/docs").body)
	files := map[string]struct {
		path, contentType string
		compressed        bool
	}{
		"swagger-ui-bundle.js": {"docsui/swagger-ui-dist/swagger-ui-bundle.js", "text/javascript; charset=utf-8", true},
		"swagger-ui.css":       {"docsui/swagger-ui-dist/swagger-ui.css", "text/css; charset=utf-8", true},
		"init.js":              {"docsui/init.js", "text/javascript; charset=utf-8", true},
		"favicon-32x32.png":    {"docsui/swagger-ui-dist/favicon-32x32.png", "image/png", false},
	}
	for name, f := range files {
		want, err := os.ReadFile(f.path)
		if err != nil {
			t.Fatal(err)
		}
		url := assets[name]
		plain := e.raw(http.MethodGet, url, nil)
		if plain.status != http.StatusOK || !bytes.Equal(plain.body, want) || plain.header.Get("Content-Encoding") != "" {
			t.Errorf("%s: %d, %d bytes (want the %d of %s), encoding %q", url, plain.status, len(plain.body), len(want), f.path, plain.header.Get("Content-Encoding"))
		}
		for k, v := range map[string]string{
			"Content-Type":           f.contentType,
			"Cache-Control":          "public, max-age=31536000, immutable",
			"X-Content-Type-Options": "nosniff",
		} {
			if got := plain.header.Get(k); got != v {
				t.Errorf("%s: %s = %q, want %q", url, k, got, v)
			}
		}
		gz := e.raw(http.MethodGet, url, map[string]string{"Accept-Encoding": "br, gzip;q=0.8"})
		if !f.compressed {
			if gz.header.Get("Content-Encoding") != "" || !bytes.Equal(gz.body, want) {
				t.Errorf("%s: compressed although it is not worth it", url)
			}
			continue
		}
		if got := gz.header.Get("Vary"); got != "Accept-Encoding" {
			t.Errorf("%s: Vary = %q, want Accept-Encoding", url, got)
		}
		if gz.header.Get("Content-Encoding") != "gzip" {
			t.Errorf("%s: Content-Encoding %q, want gzip", url, gz.header.Get("Content-Encoding"))
			continue
		}
		zr, err := gzip.NewReader(bytes.NewReader(gz.body))
		if err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		unzipped, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(unzipped, want) {
			t.Errorf("%s: the gzip body does not decompress, once, to the file (%v)", url, err)
		}
		if name == "swagger-ui-bundle.js" && len(gz.body)*3 > len(want) {
			t.Errorf("%s: %d bytes compressed from %d", url, len(gz.body), len(want))
		}
		if gz.header.Get("ETag") == plain.header.Get("ETag") {
			t.Errorf("%s: the gzip and identity representations share the ETag %s", url, gz.header.Get("ETag"))
		}
		if again := e.raw(http.MethodGet, url, map[string]string{"Accept-Encoding": "gzip"}); !bytes.Equal(again.body, gz.body) {
			t.Errorf("%s: compressed differently the second time", url)
		}
		for _, ae := range []string{"gzip;q=0", "gzip;q=0, *", "identity", "br"} {
			if r := e.raw(http.MethodGet, url, map[string]string{"Accept-Encoding": ae}); r.header.Get("Content-Encoding") != "" {
				t.Errorf("%s with Accept-Encoding %q: compressed", url, ae)
			}
		}
		h := e.raw(http.MethodHead, url, map[string]string{"Accept-Encoding": "gzip"})
		if h.status != http.StatusOK || len(h.body) != 0 || h.header.Get("Content-Length") != gz.header.Get("Content-Length") {
			t.Errorf("HEAD %s = %d, %d bytes, length %s (GET: %s)", url, h.status, len(h.body), h.header.Get("Content-Length"), gz.header.Get("Content-Length"))
		}
		nm := e.raw(http.MethodGet, url, map[string]string{"Accept-Encoding": "gzip", "If-None-Match": gz.header.Get("ETag")})
		if nm.status != http.StatusNotModified || len(nm.body) != 0 {
			t.Errorf("%s If-None-Match: %d with %d bytes", url, nm.status, len(nm.body))
		}
	}

	// A page of another build (a rolling update) still gets its files, but
	// nothing may store them under a version they are not.
	bundle := assets["swagger-ui-bundle.js"]
	other := regexp.MustCompile(`/docs/assets/[^/]+/`).ReplaceAllString(bundle, "/docs/assets/0.0.0-000000000000/")
	if r := e.raw(http.MethodGet, other, nil); r.status != http.StatusOK || r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("%s: %d, Cache-Control %q; want 200 no-store", other, r.status, r.header.Get("Cache-Control"))
	}
	for _, path := range []string{strings.Replace(bundle, "swagger-ui-bundle.js", "swagger-ui.js.map", 1),
		strings.Replace(bundle, "swagger-ui-bundle.js", "../../../openapi.json", 1), "/docs/assets/x/init.js/y", "/docs/assets/"} {
		decodeProblem(t, e.get(path), http.StatusNotFound)
	}
	metrics := string(e.get("/metrics").body)
	if !strings.Contains(metrics, `route="/docs/assets/:version/:file"`) || strings.Contains(metrics, "0.0.0-000000000000") {
		t.Error("asset requests are not labelled by their route pattern")
	}
}

// The embedded Swagger UI is exactly what scripts/docs-assets.sh took from
// the npm package and recorded, licence included.
func TestVendoredSwaggerUIMatchesItsRecord(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("docsui", "swagger-ui-dist")
	raw, err := os.ReadFile(filepath.Join(dir, "vendor.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Package, Version, Integrity, License string
		Files                                map[string]string
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if v.Package != "swagger-ui-dist" || !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(v.Version) ||
		!strings.HasPrefix(v.Integrity, "sha512-") || v.License != "Apache-2.0" {
		t.Errorf("vendor.json = %+v", v)
	}
	for _, name := range []string{"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		if got := "sha256-" + hex.EncodeToString(sum[:]); v.Files[name] != got {
			t.Errorf("%s is %s, vendor.json records %s: refresh it with make docs-assets, never by hand", name, got, v.Files[name])
		}
	}
	if lic, err := os.ReadFile(filepath.Join(dir, "LICENSE")); err != nil || !strings.Contains(string(lic), "Apache License") {
		t.Errorf("LICENSE: %v", err)
	}
}
