package charttest

import (
	"strings"
	"testing"
)

// TestExternalDatabaseReadURL covers DATABASE_READ_URL with an external
// database: from the values (the chart's Secret), from an existing Secret,
// and absent.
func TestExternalDatabaseReadURL(t *testing.T) {
	readEnv := func(t *testing.T, objs []obj, deploy string) map[string]any {
		t.Helper()
		e := env(container(t, find(t, objs, "Deployment", deploy), "api"))["DATABASE_READ_URL"]
		if e == nil {
			t.Fatalf("%s: no DATABASE_READ_URL entry", deploy)
		}
		if !isBool(get(e, "valueFrom.secretKeyRef.optional"), true) {
			t.Errorf("%s: DATABASE_READ_URL secretKeyRef optional = %v, want true (a Secret without the key must not block the pods)", deploy, get(e, "valueFrom.secretKeyRef.optional"))
		}
		return e
	}
	const readURL = "postgres://rickmorty_api:pw@db-replica.example.internal:6432/rickmorty?sslmode=require"

	t.Run("URL in values: stored next to DATABASE_URL", func(t *testing.T) {
		objs := render(t, append(values(t, "minimal-values.yaml"), "--set", "global.database.api.readUrl="+readURL)...)
		if got := secretRef(readEnv(t, objs, apiName)); got != dbSecret+"/api-database-read-url" {
			t.Errorf("DATABASE_READ_URL from %s", got)
		}
		if got := secretData(t, find(t, objs, "Secret", dbSecret))["api-database-read-url"]; got != readURL {
			t.Errorf("Secret api-database-read-url = %q, want %q", got, readURL)
		}
		if _, ok := env(container(t, find(t, objs, "Deployment", ingesterName), "ingester"))["DATABASE_READ_URL"]; ok {
			t.Error("the ingester got DATABASE_READ_URL")
		}
	})
	t.Run("no read URL: the key is absent, so the variable is unset", func(t *testing.T) {
		objs := render(t, values(t, "minimal-values.yaml")...)
		readEnv(t, objs, apiName)
		if _, ok := secretData(t, find(t, objs, "Secret", dbSecret))["api-database-read-url"]; ok {
			t.Error("the chart's Secret has a read URL although none is configured")
		}
	})
	t.Run("existing Secret: its own key", func(t *testing.T) {
		objs := render(t, values(t, "production-values.yaml")...)
		if got := secretRef(readEnv(t, objs, apiName)); got != "rickmorty-db/api-database-read-url" {
			t.Errorf("DATABASE_READ_URL from %s, want the API's existing Secret", got)
		}
		alt := render(t, append(values(t, "alternatives-values.yaml"), "--set", "global.database.api.readSecretKey=read-url")...)
		if got := secretRef(readEnv(t, alt, "rm-api")); got != "rickmorty-api-db/read-url" {
			t.Errorf("DATABASE_READ_URL from %s, want the API's own Secret and the configured key", got)
		}
	})
	t.Run("misconfigurations fail with a message", func(t *testing.T) {
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"--set", "global.database.existingSecret=db", "--set", "global.database.api.readUrl=" + readURL}, "put the read URL under its key"},
			{[]string{"--set", "global.database.api.readUrl=" + readURL}, "needs that URL in the values too"},
			{[]string{"--set", "global.database.api.readSecretKey=api-database-url"}, "needs a key of its own"},
			{[]string{"--set", "global.database.api.readUrl=mysql://db/x"}, ""},
		} {
			if _, err := tryRender(c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%v: err = %v, want a failure containing %q", c.args, err, c.want)
			}
		}
	})
}
