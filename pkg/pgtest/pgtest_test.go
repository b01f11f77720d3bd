package pgtest

import (
	"errors"
	"strings"
	"testing"
)

func TestChooseServer(t *testing.T) {
	const url = "postgres://postgres@127.0.0.1:5432/postgres"
	tests := []struct {
		name      string
		env       map[string]string
		docker    bool
		startErr  error
		want      string
		wantStart bool
		wantErr   string
	}{
		{name: "an explicit URL wins over an engine", env: map[string]string{EnvURL: url}, docker: true, want: url},
		{name: "an explicit URL wins over an engine that cannot start the container", env: map[string]string{EnvURL: url}, docker: true, startErr: errors.New("pull failed"), want: url},
		{name: "no URL, an engine: a container", docker: true, want: "postgres://container", wantStart: true},
		{name: "no URL, an engine, no image", docker: true, startErr: errors.New("the Postgres image x is not in the Docker engine"), wantStart: true, wantErr: "the Postgres image x is not in the Docker engine"},
		{name: "no URL, no engine", wantErr: "no Docker engine and " + EnvURL + " is unset"},
		{name: "no URL, Docker refused", env: map[string]string{EnvNoDocker: "1"}, docker: true, wantErr: EnvNoDocker + " is set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			started := false
			got, err := chooseServer(
				func(k string) string { return tt.env[k] },
				func() bool { return tt.docker },
				func() (string, error) {
					started = true
					if tt.startErr != nil {
						return "", tt.startErr
					}
					return "postgres://container", nil
				})
			if started != tt.wantStart {
				t.Errorf("container started = %v, want %v", started, tt.wantStart)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestAsRoleAndLoginRole(t *testing.T) {
	for _, tt := range []struct{ in, role, want string }{
		{"postgres://postgres@h:5432/db?sslmode=disable", "rm_ro", "postgres://rm_ro:" + RolePassword + "@h:5432/db?sslmode=disable"},
		{"postgres://postgres:postgres@h:5432/db", "rm_ro", "postgres://rm_ro:" + RolePassword + "@h:5432/db"},
		// The URL's own user keeps its own password (or none).
		{"postgres://postgres:postgres@h:5432/db", "postgres", "postgres://postgres:postgres@h:5432/db"},
		{"postgres://postgres@h:5432/db", "postgres", "postgres://postgres@h:5432/db"},
	} {
		if got := AsRole(t, tt.in, tt.role); got != tt.want {
			t.Errorf("AsRole(%q, %q) = %q, want %q", tt.in, tt.role, got, tt.want)
		}
	}
	if got, want := LoginRole("a\"b", "CREATEROLE"), `CREATE ROLE "a""b" LOGIN PASSWORD '`+RolePassword+`' CREATEROLE`; got != want {
		t.Errorf("LoginRole = %q, want %q", got, want)
	}
}
