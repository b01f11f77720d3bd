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
