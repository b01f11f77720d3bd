package main

import (
	"strings"
	"testing"
)

func TestLoadConfigCORSOrigins(t *testing.T) {
	t.Parallel()
	load := func(origins string) (Config, error) {
		return loadConfig(func(k string) string {
			return map[string]string{"DATABASE_URL": "postgres://u@h/db", "CORS_ALLOWED_ORIGINS": origins}[k]
		})
	}
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"*", "*"},
		{" https://app.example.com , http://localhost:5173 ", "https://app.example.com http://localhost:5173"},
	} {
		in, want := tc.in, tc.want
		cfg, err := load(in)
		if err != nil || strings.Join(cfg.CORSOrigins, " ") != want {
			t.Errorf("CORS_ALLOWED_ORIGINS=%q: %q, %v; want %q", in, cfg.CORSOrigins, err, want)
		}
	}
	for _, in := range []string{"https://app.example.com/", "app.example.com", "*, https://app.example.com", "https://*.example.com"} {
		_, err := load(in)
		if err == nil || !strings.Contains(err.Error(), "CORS_ALLOWED_ORIGINS") {
			t.Errorf("CORS_ALLOWED_ORIGINS=%q: error %v, want one naming the variable", in, err)
		}
	}
}
