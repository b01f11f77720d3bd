package charttest

import (
	"testing"

	"github.com/rickmorty/rickmorty/pkg/httpapi"
)

// api.config.corsAllowedOrigins becomes CORS_ALLOWED_ORIGINS, and the chart
// refuses the lists the API would refuse at start (a CrashLoop otherwise).
func TestCORSAllowedOrigins(t *testing.T) {
	corsEnv := func(args ...string) (string, bool) {
		e := env(container(t, find(t, render(t, args...), "Deployment", apiName), "api"))["CORS_ALLOWED_ORIGINS"]
		if e == nil {
			return "", false
		}
		v, _ := e["value"].(string)
		return v, true
	}
	if v, ok := corsEnv(); ok {
		t.Errorf("by default CORS_ALLOWED_ORIGINS = %q; want it unset (CORS off)", v)
	}
	for set, want := range map[string]string{
		`["https://app.example.com","http://localhost:5173"]`: "https://app.example.com,http://localhost:5173",
		`["*"]`: "*",
		`["chrome-extension://abcdefghijklmnop","http://127.0.0.1:65535"]`: "chrome-extension://abcdefghijklmnop,http://127.0.0.1:65535",
	} {
		got, ok := corsEnv("--set-json", "api.config.corsAllowedOrigins="+set)
		if !ok || got != want {
			t.Errorf("corsAllowedOrigins=%s: CORS_ALLOWED_ORIGINS = %q, want %q", set, got, want)
		}
		if _, err := httpapi.ParseCORSOrigins(got); err != nil {
			t.Errorf("corsAllowedOrigins=%s renders %q, which the API refuses: %v", set, got, err)
		}
	}
	for _, set := range []string{
		`"https://app.example.com"`, `["https://app.example.com/"]`, `["https://App.example.com"]`,
		`["app.example.com"]`, `["*","https://app.example.com"]`, `["https://*.example.com"]`,
		`["https://app.example.com:443"]`, `["http://app.example.com:80"]`, `["http://app.example.com:65536"]`,
		`["https://app.example.com:0"]`, `["null"]`, `["https://a.example.com","https://a.example.com"]`,
	} {
		objs, err := tryRender("--set-json", "api.config.corsAllowedOrigins="+set)
		if err == nil {
			v, _ := env(container(t, find(t, objs, "Deployment", apiName), "api"))["CORS_ALLOWED_ORIGINS"]["value"].(string)
			_, apiErr := httpapi.ParseCORSOrigins(v)
			t.Errorf("corsAllowedOrigins=%s: rendered (CORS_ALLOWED_ORIGINS=%q; the API says %v); want the chart to refuse it", set, v, apiErr)
		}
	}
}
