package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/rickmorty/rickmorty/pkg/httpapi"
)

func loadSpec(t *testing.T, e *env) (*openapi3.T, routers.Router) {
	t.Helper()
	r := e.get("/openapi.json")
	if r.status != http.StatusOK {
		t.Fatalf("openapi.json: %d", r.status)
	}
	doc, err := openapi3.NewLoader().LoadFromData(r.body)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the document is not valid OpenAPI 3: %v", err)
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return doc, router
}

func TestOpenAPIDocumentIsValidAndCoversEveryRoute(t *testing.T) {
	t.Parallel()
	e := setup(t, options{})
	doc, _ := loadSpec(t, e)
	for _, path := range []string{"/characters", "/characters/{id}", "/healthz", "/readyz", "/healthcheck", "/metrics", "/openapi.json", "/docs", "/docs/assets/{version}/{file}"} {
		if doc.Paths.Find(path) == nil {
			t.Errorf("the document lacks %s", path)
		}
	}
}

func TestResponsesMatchTheOpenAPIDocument(t *testing.T) {
	t.Parallel()
	e := setup(t, options{seed: 12, viaProxy: true, cfg: httpapi.Config{
		RateLimit: 0.001, RateBurst: 5,
		TrustedProxies:     []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		CORSAllowedOrigins: []string{"https://app.example"},
	}})
	_, router := loadSpec(t, e)
	tag := e.get("/characters").header.Get("ETag")

	clients := 0
	var checkMethod func(method, path string, header map[string]string, wantStatus int)
	check := func(path string, header map[string]string, wantStatus int) {
		t.Helper()
		checkMethod(http.MethodGet, path, header, wantStatus)
	}
	checkMethod = func(method, path string, header map[string]string, wantStatus int) {
		t.Helper()
		req, _ := http.NewRequest(method, e.base+path, nil)
		clients++ // a fresh client per check, so only the last one is limited
		req.Header.Set("X-Forwarded-For", fmt.Sprintf("192.0.2.%d", clients))
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != wantStatus {
			t.Fatalf("%s: status %d, want %d: %s", path, resp.StatusCode, wantStatus, body)
		}
		route, params, err := router.FindRoute(req)
		if err != nil {
			t.Fatalf("%s %s: not in the document: %v", method, path, err)
		}
		// What the server accepted, a schema-driven client must be allowed
		// to send (empty parameters included).
		if wantStatus < 400 {
			reqIn := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
				Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
			if err := openapi3filter.ValidateRequest(context.Background(), reqIn); err != nil {
				t.Errorf("%s %s: the document forbids a request the server answers %d: %v", method, path, wantStatus, err)
			}
		}
		in := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
			Status:                 resp.StatusCode,
			Header:                 resp.Header,
			Body:                   io.NopCloser(bytes.NewReader(body)),
			Options:                &openapi3filter.Options{IncludeResponseStatus: true},
		}
		if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
			t.Errorf("%s %s %d does not match the document: %v", method, path, resp.StatusCode, err)
		}
		if wantStatus == http.StatusMethodNotAllowed || method == http.MethodOptions {
			if got, want := resp.Header.Get("Allow"), "OPTIONS, GET, HEAD"; got != want {
				t.Errorf("%s %s: Allow = %q, want %q", method, path, got, want)
			}
		}
	}

	check("/characters", nil, 200)
	check("/characters?sort=name&order=desc&page=2&page_size=5", nil, 200)
	check("/characters?page=40", nil, 200)
	check("/characters", map[string]string{"If-None-Match": tag}, 304)
	check("/characters?page=0", nil, 422)
	check("/characters/3", nil, 200)
	item := e.get("/characters/3") // e.get shares one client's rate-limit bucket: few of them
	check("/characters/3", map[string]string{"If-None-Match": item.header.Get("ETag")}, 304)
	check("/characters/3", map[string]string{"If-Modified-Since": item.header.Get("Last-Modified")}, 304)
	check("/characters?name=ric&origin=earth&location=citadel&gender=Female&sort=name", nil, 200)
	check("/characters?gender=robot", nil, 422)
	check("/characters?name=ri", nil, 422)
	check("/characters?gender=FEMALE&name=", nil, 200)
	check("/characters?name="+strings.Repeat("x", 101), nil, 422)
	check("/characters/999", nil, 404)
	check("/characters/abc", nil, 422)
	check("/characters/+1", nil, 422)
	check("/characters?sort=&order=&page=&page_size=", nil, 200)
	checkMethod(http.MethodHead, "/characters?page=2", nil, 200)
	checkMethod(http.MethodHead, "/characters/3", nil, 200)
	checkMethod(http.MethodHead, "/characters/999", nil, 404)
	checkMethod(http.MethodOptions, "/characters", nil, 204)
	checkMethod(http.MethodOptions, "/characters/3", nil, 204)
	preflight := map[string]string{"Origin": "https://app.example", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "if-none-match"}
	checkMethod(http.MethodOptions, "/characters", preflight, 204)
	checkMethod(http.MethodOptions, "/characters/3", preflight, 204)
	checkMethod(http.MethodOptions, "/openapi.json", preflight, 204)
	check("/characters?page_size=3", map[string]string{"Origin": "https://app.example"}, 200)
	check("/characters/3", map[string]string{"Origin": "https://app.example", "If-None-Match": item.header.Get("ETag")}, 304)
	check("/characters/3", map[string]string{"Origin": "https://stranger.example"}, 200)
	checkMethod(http.MethodPost, "/characters", nil, 405)
	checkMethod(http.MethodDelete, "/characters/3", nil, 405)
	checkMethod(http.MethodPut, "/healthz", nil, 405)
	check("/healthz", nil, 200)
	check("/readyz", nil, 200)
	check("/healthcheck", nil, 200)
	e.listener.connected.Store(false)
	check("/healthcheck", nil, 503)
	e.listener.connected.Store(true)
	check("/openapi.json", nil, 200)
	check("/openapi.json", map[string]string{"If-None-Match": e.get("/openapi.json").header.Get("ETag")}, 304)
	check("/metrics", nil, 200)
	docs := e.get("/docs")
	check("/docs", nil, 200)
	check("/docs", map[string]string{"If-None-Match": docs.header.Get("ETag")}, 304)
	checkMethod(http.MethodHead, "/docs", nil, 200)
	checkMethod(http.MethodOptions, "/docs", nil, 204)
	checkMethod(http.MethodPost, "/docs", nil, 405)
	assets := docsAssets(t, docs.body)
	for _, asset := range assets {
		check(asset, nil, 200)
	}
	bundle := assets["swagger-ui-bundle.js"]
	checkMethod(http.MethodHead, bundle, nil, 200)
	checkMethod(http.MethodOptions, bundle, nil, 204)
	checkMethod(http.MethodDelete, bundle, nil, 405)
	check(strings.Replace(bundle, "swagger-ui-bundle.js", "nope.js", 1), nil, 404)

	e.proxy.Down()
	check("/characters?page_size=9", nil, 503)
	e.proxy.Up()

	limited := map[string]string{"X-Forwarded-For": "198.51.100.1"}
	for range 5 { // empty that client's bucket
		e.do(http.MethodGet, "/characters", limited)
	}
	check("/characters", limited, 429)
}

// TestUnknownRoutesAnswerTheDocumentedProblem: no document can list the
// paths that do not exist, so the answer is checked against the schema of
// the document's NoRoute response.
func TestUnknownRoutesAnswerTheDocumentedProblem(t *testing.T) {
	t.Parallel()
	e := setup(t, options{})
	doc, _ := loadSpec(t, e)
	noRoute := doc.Components.Responses["NoRoute"]
	if noRoute == nil || noRoute.Value.Content.Get("application/problem+json") == nil {
		t.Fatal("the document has no NoRoute problem response")
	}
	schema := noRoute.Value.Content.Get("application/problem+json").Schema.Value
	for _, path := range []string{"/nope", "/characters/1/episodes", "/api/character"} {
		r := e.get(path)
		if r.status != http.StatusNotFound || r.header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("%s: %d %s", path, r.status, r.header.Get("Content-Type"))
		}
		var body any
		if err := json.Unmarshal(r.body, &body); err != nil {
			t.Fatal(err)
		}
		if err := schema.VisitJSON(body); err != nil {
			t.Errorf("%s: the 404 body does not match the document: %v", path, err)
		}
	}
}
