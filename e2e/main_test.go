package e2e

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// The suite's whole configuration. See README.md in this directory.
const (
	envAPIURLs         = "E2E_API_URLS"             // every API replica, comma-separated
	envBaseURL         = "BASE_URL"                 // one API, when E2E_API_URLS is not set
	envIngesterMetrics = "E2E_INGESTER_METRICS_URL" // the ingester's /metrics
	envFakeURL         = "E2E_FAKE_URL"             // the fake upstream's root (its /_fake/ controls)
	envIngestCmd       = "E2E_INGEST_CMD"           // shell command running one ingest (exit 0 ok, 1 failed, 3 locked, 4 refused); flags are appended (--force)
	envPlanCmd         = "E2E_PLAN_CMD"             // shell command running `ingester plan` (exit 0 accepted, 4 refused, 1 failed); flags are appended (--json, --limit N)
	envIngestTimeout   = "E2E_INGEST_TIMEOUT"       // how long one ingest may take (default 2m)
	envDBRestartCmd    = "E2E_DB_RESTART_CMD"       // shell command restarting the database
	envDBStopCmd       = "E2E_DB_STOP_CMD"          // optional, with E2E_DB_START_CMD: an outage window
	envDBStartCmd      = "E2E_DB_START_CMD"
	envNameOrder       = "E2E_NAME_ORDER" // "codepoint" (default) or "db"
	envReadyTimeout    = "E2E_READY_TIMEOUT"
	// Optional: the replicas (a subset of E2E_API_URLS) whose reads go to
	// a DATABASE_READ_URL (a standby or a pooler).
	envReplicaReadAPIs = "E2E_REPLICA_READ_API_URLS"
	// Optional: what the replicas are configured with, for the suite to
	// check: the origin CORS_ALLOWED_ORIGINS allows (unset: CORS is off)
	// and the Cache-Control their answers carry (unset: "no-cache").
	envCORSOrigin   = "E2E_CORS_ORIGIN"
	envCacheControl = "E2E_CACHE_CONTROL"
)

// propagationDeadline is how soon after an ingest commits every replica must
// serve the new data, whatever its cache TTL.
const propagationDeadline = 2 * time.Second

// system is the deployment under test.
type system struct {
	apis            []string // base URLs without a trailing slash
	replicaReadAPIs []string // those of apis that read through DATABASE_READ_URL
	ingesterMetrics string
	fake            string // root URL, no trailing slash
	ingestCmd       string
	planCmd         string
	ingestTimeout   time.Duration
	dbRestartCmd    string
	dbStopCmd       string
	dbStartCmd      string
	nameOrder       string
	corsOrigin      string // "" when CORS is off
	cacheControl    string
	client          *http.Client
}

// sys is set by TestMain before any test runs.
var sys *system

const howToRun = `These are end-to-end tests of a running rickmorty system; they do not start one.
Run them with:

    make e2e

which builds the binaries, starts Postgres, the fake upstream, the ingester and
two API replicas, runs this suite against them and tears everything down.
To run the suite against a system you started yourself, set at least
E2E_API_URLS (or BASE_URL), E2E_INGESTER_METRICS_URL and E2E_FAKE_URL
(see e2e/README.md).`

func TestMain(m *testing.M) {
	s, err := loadSystem(os.Getenv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n\n%s\n", err, howToRun)
		os.Exit(1)
	}
	ready := durationEnv(os.Getenv, envReadyTimeout, 90*time.Second)
	if err := s.waitReady(ready); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: the system under test is not ready after %s: %v\n", ready, err)
		os.Exit(1)
	}
	sys = s
	os.Exit(m.Run())
}

func loadSystem(getenv func(string) string) (*system, error) {
	var errs []error
	s := &system{
		// No transparent gzip: a request asks for a compressed answer only
		// when a test says so (each coding has its own ETag).
		client:        &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{DisableCompression: true}},
		ingestCmd:     strings.TrimSpace(getenv(envIngestCmd)),
		planCmd:       strings.TrimSpace(getenv(envPlanCmd)),
		ingestTimeout: durationEnv(getenv, envIngestTimeout, 2*time.Minute),
		dbRestartCmd:  strings.TrimSpace(getenv(envDBRestartCmd)),
		dbStopCmd:     strings.TrimSpace(getenv(envDBStopCmd)),
		dbStartCmd:    strings.TrimSpace(getenv(envDBStartCmd)),
		nameOrder:     strings.TrimSpace(getenv(envNameOrder)),
		corsOrigin:    strings.TrimSpace(getenv(envCORSOrigin)),
		cacheControl:  strings.TrimSpace(getenv(envCacheControl)),
	}
	if s.cacheControl == "" {
		s.cacheControl = "no-cache"
	}
	apis := getenv(envAPIURLs)
	if strings.TrimSpace(apis) == "" {
		apis = getenv(envBaseURL)
	}
	for item := range strings.SplitSeq(apis, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		u, err := checkURL(item)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", envAPIURLs, err))
			continue
		}
		s.apis = append(s.apis, u)
	}
	if len(s.apis) == 0 && strings.TrimSpace(apis) == "" {
		errs = append(errs, fmt.Errorf("%s (or %s) is not set", envAPIURLs, envBaseURL))
	}

	for item := range strings.SplitSeq(getenv(envReplicaReadAPIs), ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		u, err := checkURL(item)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", envReplicaReadAPIs, err))
		case !slices.Contains(s.apis, u):
			errs = append(errs, fmt.Errorf("%s: %s is not one of %s", envReplicaReadAPIs, u, envAPIURLs))
		default:
			s.replicaReadAPIs = append(s.replicaReadAPIs, u)
		}
	}

	if v := getenv(envIngesterMetrics); strings.TrimSpace(v) == "" {
		errs = append(errs, fmt.Errorf("%s is not set", envIngesterMetrics))
	} else if u, err := checkURL(v); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", envIngesterMetrics, err))
	} else {
		s.ingesterMetrics = u
	}

	if v := getenv(envFakeURL); strings.TrimSpace(v) == "" {
		errs = append(errs, fmt.Errorf("%s is not set", envFakeURL))
	} else if u, err := checkURL(v); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", envFakeURL, err))
	} else {
		// The fake prints its base URL (…/api); its controls are beside it.
		s.fake = strings.TrimSuffix(u, "/api")
	}

	switch s.nameOrder {
	case "":
		s.nameOrder = "codepoint"
	case "codepoint", "db":
	default:
		errs = append(errs, fmt.Errorf("%s=%q: want codepoint or db", envNameOrder, s.nameOrder))
	}
	if (s.dbStopCmd == "") != (s.dbStartCmd == "") {
		errs = append(errs, fmt.Errorf("set both %s and %s, or neither", envDBStopCmd, envDBStartCmd))
	}
	return s, errors.Join(errs...)
}

func checkURL(raw string) (string, error) {
	raw = strings.TrimRight(strings.TrimSpace(raw), "/")
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%q is not an http(s) URL", raw)
	}
	return raw, nil
}

func durationEnv(getenv func(string) string, name string, def time.Duration) time.Duration {
	if v := getenv(name); v != "" {
		if d, err := time.ParseDuration(v); err == nil && d > 0 {
			return d
		}
		fmt.Fprintf(os.Stderr, "e2e: ignoring %s=%q: want a positive duration such as 90s\n", name, v)
	}
	return def
}

// ingesterURL is path on the ingester's metrics server (/readyz, /healthz).
func (s *system) ingesterURL(path string) string {
	u, _ := url.Parse(s.ingesterMetrics) // validated by loadSystem
	u.Path, u.RawQuery = path, ""
	return u.String()
}

// waitReady waits until every API replica, the ingester and the fake answer.
func (s *system) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	check := func() error {
		for _, api := range s.apis {
			if err := s.expectStatus(api+"/readyz", http.StatusOK); err != nil {
				return err
			}
			// Deep: the database answers and the change listener is connected.
			if err := s.expectStatus(api+"/healthcheck", http.StatusOK); err != nil {
				return err
			}
		}
		if err := s.expectStatus(s.ingesterMetrics, http.StatusOK); err != nil {
			return err
		}
		if err := s.expectStatus(s.ingesterURL("/readyz"), http.StatusOK); err != nil {
			return err
		}
		return s.expectStatus(s.fake+"/_fake/stats", http.StatusOK)
	}
	for {
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (s *system) expectStatus(u string, want int) error {
	resp, err := s.client.Get(u)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		return fmt.Errorf("GET %s: %s, want %d", u, resp.Status, want)
	}
	return nil
}
