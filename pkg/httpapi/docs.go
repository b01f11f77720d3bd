package httpapi

import (
	"bytes"
	"crypto/sha256"
	"embed"
	hexenc "encoding/hex"
	"encoding/json"
	"html/template"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

// The interactive documentation: GET /docs is a page that renders
// /openapi.json with Swagger UI. Everything it loads comes from this
// binary: Swagger UI is vendored from the npm package swagger-ui-dist
// (docsui/swagger-ui-dist, refreshed by `make docs-assets`, which records
// the version, the package's integrity and its licence in vendor.json);
// docsui/index.html and docsui/init.js are ours.
//
//go:embed docsui/index.html docsui/init.js docsui/swagger-ui-dist
var docsFS embed.FS

// docsCSP allows the page nothing but its own assets and the API itself.
// Measured with the browser test (cmd/api), Swagger UI needs no more:
//   - script-src 'self': the bundle and init.js; no inline script, no eval;
//   - style-src 'self': swagger-ui.css; the styles the UI sets at run time
//     go through the CSSOM, which CSP does not govern;
//   - img-src 'self' data: the favicon, and the icons swagger-ui.css embeds
//     as data: URLs;
//   - connect-src 'self': /openapi.json and the "Try it out" requests.
//
// Nothing may frame the page, post a form or change its base URL.
const docsCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// docFile is one file the docs routes serve, with its validators and, for
// text, a gzip copy made once, on first use (the bundle's 1.7 MB become
// 0.46 MB).
type docFile struct {
	contentType []string
	plain       *representation
	gzipped     func() *representation // nil: served as is (already compressed, or tiny)
}

// docsSite is what the docs routes serve, built once from docsFS.
type docsSite struct {
	version string // in the asset URLs: Swagger UI's version and a hash of the assets
	page    *docFile
	assets  map[string]*docFile // by file name
}

// docsAssetTypes lists the files served under /docs/assets/, with their
// types: the vendored ones the page needs, and ours.
var docsAssetTypes = map[string]string{
	"swagger-ui-bundle.js": "text/javascript; charset=utf-8",
	"swagger-ui.css":       "text/css; charset=utf-8",
	"favicon-32x32.png":    "image/png",
	"init.js":              "text/javascript; charset=utf-8",
}

// docsVendor is what the server reads of docsui/swagger-ui-dist/vendor.json,
// the record scripts/docs-assets.sh writes (TestVendoredSwaggerUIMatchesItsRecord
// checks the rest).
type docsVendor struct {
	Version string `json:"version"`
}

var loadDocs = sync.OnceValue(func() *docsSite {
	site, err := buildDocs(docsFS)
	if err != nil {
		panic("httpapi: the embedded docs do not load: " + err.Error()) // a build defect, which TestDocsPage catches
	}
	return site
})

func buildDocs(fsys fs.FS) (*docsSite, error) {
	var vendor docsVendor
	raw, err := fs.ReadFile(fsys, "docsui/swagger-ui-dist/vendor.json")
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, &vendor); err != nil {
		return nil, err
	}
	site := &docsSite{assets: map[string]*docFile{}}
	sum := sha256.New()
	for _, name := range slices.Sorted(maps.Keys(docsAssetTypes)) { // sorted: the hash is stable
		p := "docsui/swagger-ui-dist/" + name
		if name == "init.js" {
			p = "docsui/init.js"
		}
		body, err := fs.ReadFile(fsys, p)
		if err != nil {
			return nil, err
		}
		sum.Write([]byte(name))
		sum.Write(body)
		site.assets[name] = newDocFile([]string{docsAssetTypes[name]}, body, !strings.HasPrefix(docsAssetTypes[name], "image/"))
	}
	site.version = vendor.Version + "-" + hexenc.EncodeToString(sum.Sum(nil))[:12]

	tmpl, err := template.ParseFS(fsys, "docsui/index.html")
	if err != nil {
		return nil, err
	}
	var page bytes.Buffer
	if err := tmpl.Execute(&page, struct{ Assets, SwaggerUIVersion string }{
		Assets: path.Join("docs", "assets", site.version) + "/", SwaggerUIVersion: vendor.Version,
	}); err != nil {
		return nil, err
	}
	// The page is a kilobyte: not worth compressing.
	site.page = newDocFile([]string{"text/html; charset=utf-8"}, page.Bytes(), false)
	return site, nil
}

func newDocFile(contentType []string, body []byte, gzipped bool) *docFile {
	h := sha256.Sum256(body)
	tag := hexenc.EncodeToString(h[:8])
	f := &docFile{contentType: contentType, plain: newRepresentation(identity, tag, body)}
	if gzipped {
		f.gzipped = sync.OnceValue(func() *representation {
			return newRepresentation(codingGzip, tag, compress(codingGzip, body))
		})
	}
	return f
}

// handleDocs serves the page. It is revalidated on every use (no-cache, with
// an ETag): it names the current assets.
func (s *Server) handleDocs() echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", docsCSP)
		h.Set("Referrer-Policy", "no-referrer")
		return serveDocFile(c, loadDocs().page, "no-cache")
	}
}

// handleDocsAsset serves /docs/assets/<version>/<file>. Under the current
// version a file never changes, so it may be cached for a year without
// revalidation. Under another version (a page from an older or newer pod
// during a rolling update) the file is served all the same, so the page
// works, but must not be stored: its bytes are not that version's.
func (s *Server) handleDocsAsset() echo.HandlerFunc {
	return func(c echo.Context) error {
		site := loadDocs()
		f, ok := site.assets[c.Param("file")]
		if !ok {
			return echo.ErrNotFound
		}
		cacheControl := "public, max-age=31536000, immutable"
		if c.Param("version") != site.version {
			cacheControl = "no-store"
		}
		return serveDocFile(c, f, cacheControl)
	}
}

func serveDocFile(c echo.Context, f *docFile, cacheControl string) error {
	h := c.Response().Header()
	h.Set("Cache-Control", cacheControl)
	h.Set("X-Content-Type-Options", "nosniff")
	r := f.plain
	if f.gzipped != nil {
		h.Add("Vary", "Accept-Encoding")
		if negotiate(acceptEncoding(c.Request()), &gzipOffer) == codingGzip {
			r = f.gzipped()
		}
	}
	return r.write(c, f.contentType, time.Time{})
}

// gzipOffer is what a docs asset comes in: as it is, or gzipped.
var gzipOffer = func() (offer [numCodings]*representation) {
	offer[identity], offer[codingGzip] = &representation{}, &representation{}
	return offer
}()
