package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/rickmorty/rickmorty/pkg/telemetry"
)

// Config tunes the crawler.
type Config struct {
	BaseURL       string        // e.g. https://rickandmortyapi.com/api; pages are {BaseURL}/character?page=N
	Timeout       time.Duration // per HTTP attempt, including reading the body
	Retries       int           // retries after the first attempt, per page
	RetryWaitMin  time.Duration // first backoff step
	RetryWaitMax  time.Duration // backoff ceiling
	MaxRetryAfter time.Duration // the longest Retry-After honoured; longer ones are capped
	Concurrency   int           // pages fetched at once after page 1
	MaxPageBytes  int64         // a page body larger than this is refused
	// MaxPages bounds what the crawler believes of info.pages: a page 1
	// claiming more fails the crawl before anything is allocated for them.
	MaxPages  int
	UserAgent string
	// TracerProvider, when set, gets a client span for every HTTP attempt
	// (retries included) and W3C trace context is sent upstream. Nil: no
	// tracing.
	TracerProvider trace.TracerProvider
}

// DefaultMaxPages is MaxPages when unset: 100,000 characters, some 120
// times what the upstream holds, and a bounded allocation.
const DefaultMaxPages = 5000

// Result is one complete, validated crawl.
type Result struct {
	Characters []Character // in page order, ids unique
	Count      int         // info.count, equal to len(Characters)
	Pages      int         // info.pages
	Requests   int         // page requests that answered (retries included)
}

// Errors a crawl can end with, for errors.Is.
var (
	// ErrChanged means info.count or info.pages differed between pages twice in a row.
	ErrChanged = errors.New("upstream changed during the crawl")
	// ErrInvalid means a page's content broke the upstream's contract.
	ErrInvalid = errors.New("invalid upstream page")
	// ErrTooLarge means the upstream claims more pages than MaxPages.
	ErrTooLarge = errors.New("upstream claims more pages than allowed")
)

// Client crawls the upstream with retries, backoff and bounded concurrency.
type Client struct {
	cfg     Config
	http    *retryablehttp.Client
	log     *slog.Logger
	metrics *Metrics
}

// New returns a Client. metrics may be nil.
func New(cfg Config, log *slog.Logger, metrics *Metrics) *Client {
	if cfg.Concurrency < 1 {
		cfg.Concurrency = 1
	}
	if cfg.MaxPageBytes <= 0 {
		cfg.MaxPageBytes = 4 << 20
	}
	if cfg.MaxPages <= 0 {
		cfg.MaxPages = DefaultMaxPages
	}
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	var transport http.RoundTripper = &instrumentedTransport{
		next:    http.DefaultTransport.(*http.Transport).Clone(),
		metrics: metrics,
	}
	if cfg.TracerProvider != nil {
		// Outside the metrics transport, so the traceparent it injects is
		// on the request the metrics transport sends.
		transport = otelhttp.NewTransport(transport,
			otelhttp.WithTracerProvider(cfg.TracerProvider),
			otelhttp.WithPropagators(telemetry.Propagator()),
			otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
			otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method }),
		)
	}
	rc := retryablehttp.NewClient()
	rc.HTTPClient = &http.Client{Timeout: cfg.Timeout, Transport: transport}
	rc.RetryMax = cfg.Retries
	rc.RetryWaitMin = cfg.RetryWaitMin
	rc.RetryWaitMax = cfg.RetryWaitMax
	rc.Backoff = backoff(cfg.MaxRetryAfter)
	rc.CheckRetry = retryablehttp.DefaultRetryPolicy
	rc.Logger = nil // we log through slog in the hooks
	rc.RequestLogHook = func(_ retryablehttp.Logger, r *http.Request, attempt int) {
		if attempt > 0 {
			metrics.Retries.Inc()
			log.DebugContext(r.Context(), "retrying upstream request", "url", r.URL.String(), "attempt", attempt)
		}
	}
	// Keep the last response so the error names its status instead of a bare "giving up".
	rc.ErrorHandler = retryablehttp.PassthroughErrorHandler
	return &Client{cfg: cfg, http: rc, log: log, metrics: metrics}
}

// Crawl fetches every page and validates the whole. When the upstream's
// count changes mid-crawl it starts over once, then fails with ErrChanged.
func (c *Client) Crawl(ctx context.Context) (Result, error) {
	res, err := c.crawlOnce(ctx)
	if errors.Is(err, ErrChanged) {
		c.log.WarnContext(ctx, "upstream changed during the crawl; crawling again once", "err", err)
		res, err = c.crawlOnce(ctx)
	}
	return res, err
}

func (c *Client) crawlOnce(ctx context.Context) (Result, error) {
	first, err := c.fetchPage(ctx, 1)
	if errors.Is(err, errNothingHere) {
		// An empty upstream answers page 1 with 404; the sync guard decides
		// whether an empty data set may replace a stored one.
		return Result{Requests: 1}, nil
	}
	if err != nil {
		return Result{}, err
	}
	info := first.Info
	if info.Count < 0 || info.Pages != pagesFor(info.Count) {
		return Result{}, fmt.Errorf("%w: page 1 says count %d but pages %d", ErrInvalid, info.Count, info.Pages)
	}
	pages := make([]Page, info.Pages)
	pages[0] = first

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.cfg.Concurrency)
	for n := 2; n <= info.Pages; n++ {
		g.Go(func() error {
			p, err := c.fetchPage(gctx, n)
			if errors.Is(err, errNothingHere) {
				return fmt.Errorf("%w: page %d of %d answered 404 (count %d)", ErrChanged, n, info.Pages, info.Count)
			}
			if err != nil {
				return err
			}
			if p.Info.Count != info.Count || p.Info.Pages != info.Pages {
				return fmt.Errorf("%w: page %d says count %d, pages %d; page 1 said count %d, pages %d",
					ErrChanged, n, p.Info.Count, p.Info.Pages, info.Count, info.Pages)
			}
			pages[n-1] = p
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return Result{}, err
	}
	return assemble(pages, info)
}

// assemble checks page sizes and id uniqueness and flattens the pages.
func assemble(pages []Page, info Info) (Result, error) {
	res := Result{Count: info.Count, Pages: info.Pages, Characters: make([]Character, 0, info.Count)}
	seen := make(map[int]int, info.Count)
	for i, p := range pages {
		n := i + 1
		want := PageSize
		if n == info.Pages {
			want = info.Count - PageSize*(info.Pages-1)
		}
		if len(p.Results) != want {
			return Result{}, fmt.Errorf("%w: page %d has %d results, want %d (count %d): truncated page", ErrInvalid, n, len(p.Results), want, info.Count)
		}
		for _, ch := range p.Results {
			if prev, dup := seen[ch.ID]; dup {
				return Result{}, fmt.Errorf("%w: character id %d appears on pages %d and %d", ErrInvalid, ch.ID, prev, n)
			}
			seen[ch.ID] = n
			res.Characters = append(res.Characters, ch)
		}
	}
	return res, nil
}

var errNothingHere = errors.New("upstream answered 404 There is nothing here")

// fetchPage GETs one page. Transport errors, 5xx and 429 are retried by
// retryablehttp; a 200 whose body is unreadable or malformed is fetched again
// a few times too, since proxies do truncate bodies.
func (c *Client) fetchPage(ctx context.Context, n int) (Page, error) {
	url := c.cfg.BaseURL + "/character?page=" + strconv.Itoa(n)
	const contentAttempts = 3
	var lastErr error
	for attempt := range contentAttempts {
		if attempt > 0 {
			c.metrics.Retries.Inc()
			if err := sleep(ctx, jittered(c.cfg.RetryWaitMin, c.cfg.RetryWaitMax, attempt-1)); err != nil {
				return Page{}, err
			}
		}
		p, err := c.getPage(ctx, url, n)
		if err == nil || !errors.Is(err, ErrInvalid) {
			return p, err
		}
		lastErr = err
		c.log.WarnContext(ctx, "invalid upstream page; fetching it again", "page", n, "err", err)
	}
	return Page{}, lastErr
}

func (c *Client) getPage(ctx context.Context, url string, n int) (Page, error) {
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return Page{}, fmt.Errorf("page %d: %w", n, err)
	}
	req.Header.Set("Accept", "application/json")
	if c.cfg.UserAgent != "" {
		req.Header.Set("User-Agent", c.cfg.UserAgent)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if resp != nil {
			resp.Body.Close()
		}
		if ctx.Err() != nil {
			return Page{}, ctx.Err()
		}
		return Page{}, fmt.Errorf("page %d: %w", n, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.cfg.MaxPageBytes+1))
	if err != nil {
		if ctx.Err() != nil {
			return Page{}, ctx.Err()
		}
		//nolint:errorlint // only the class (ErrInvalid) is wrapped: the cause must not turn into a context or network error for callers
		return Page{}, fmt.Errorf("%w: page %d: reading body: %v", ErrInvalid, n, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound && isNothingHere(body):
		return Page{}, errNothingHere
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented:
		return Page{}, fmt.Errorf("page %d: upstream answered %s after %d retries", n, resp.Status, c.cfg.Retries)
	case resp.StatusCode != http.StatusOK:
		return Page{}, fmt.Errorf("page %d: upstream answered %s (not retried)", n, resp.Status)
	case int64(len(body)) > c.cfg.MaxPageBytes:
		return Page{}, fmt.Errorf("page %d: body larger than %d bytes", n, c.cfg.MaxPageBytes)
	}
	var p Page
	if err := json.Unmarshal(body, &p); err != nil {
		return Page{}, fmt.Errorf("%w: page %d: malformed JSON: %v", ErrInvalid, n, err) //nolint:errorlint // only the class (ErrInvalid) is wrapped
	}
	if p.Info.Pages > c.cfg.MaxPages || pagesFor(p.Info.Count) > c.cfg.MaxPages {
		// Believed, it would size the crawl's allocations.
		return Page{}, fmt.Errorf("%w: page %d says %d pages (count %d), the limit is %d (UPSTREAM_MAX_PAGES)",
			ErrTooLarge, n, p.Info.Pages, p.Info.Count, c.cfg.MaxPages)
	}
	if err := validatePage(p, n); err != nil {
		return Page{}, fmt.Errorf("%w: page %d: %v", ErrInvalid, n, err) //nolint:errorlint // only the class (ErrInvalid) is wrapped
	}
	return p, nil
}

func isNothingHere(body []byte) bool {
	var e struct {
		Error string `json:"error"`
	}
	return json.Unmarshal(body, &e) == nil && e.Error == "There is nothing here"
}

// validatePage checks page n against its own info (a short page is
// truncated, and worth fetching again) and the fields the ingest relies on.
func validatePage(p Page, n int) error {
	if p.Info.Pages < 1 || p.Info.Count < 1 || p.Info.Pages != pagesFor(p.Info.Count) {
		return fmt.Errorf("info has count %d and pages %d", p.Info.Count, p.Info.Pages)
	}
	if p.Results == nil {
		return errors.New("no results array")
	}
	if n <= p.Info.Pages {
		want := PageSize
		if n == p.Info.Pages {
			want = p.Info.Count - PageSize*(p.Info.Pages-1)
		}
		if len(p.Results) != want {
			return fmt.Errorf("%d results, want %d for page %d of %d (count %d): truncated page", len(p.Results), want, n, p.Info.Pages, p.Info.Count)
		}
	}
	for _, ch := range p.Results {
		if ch.ID < 1 {
			return fmt.Errorf("character with id %d", ch.ID)
		}
		if ch.Name == "" || ch.URL == "" {
			return fmt.Errorf("character %d has no name or url", ch.ID)
		}
		if _, err := ch.CreatedTime(); err != nil {
			return fmt.Errorf("character %d: created %q is not a timestamp", ch.ID, ch.Created)
		}
	}
	return nil
}

// pagesFor is ceil(count / PageSize), without overflowing for a huge count.
func pagesFor(count int) int {
	if count < 0 {
		return -1
	}
	return count/PageSize + min(count%PageSize, 1)
}

// CreatedTime parses the character's creation timestamp.
func (c Character) CreatedTime() (time.Time, error) {
	return time.Parse(time.RFC3339Nano, c.Created)
}

// backoff returns exponential backoff with full jitter that honours a
// Retry-After on 429 and 503, capped at maxRetryAfter so a hostile or broken
// proxy cannot park the ingester for hours.
func backoff(maxRetryAfter time.Duration) retryablehttp.Backoff {
	return func(lo, hi time.Duration, attempt int, resp *http.Response) time.Duration {
		if resp != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
			if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
				return min(d, maxRetryAfter)
			}
		}
		return jittered(lo, hi, attempt)
	}
}

// jittered returns a random wait in [lo, min(hi, lo*2^attempt)].
func jittered(lo, hi time.Duration, attempt int) time.Duration {
	ceiling := hi
	if attempt < 30 && lo<<attempt < hi && lo<<attempt > 0 {
		ceiling = lo << attempt
	}
	if ceiling <= lo {
		return lo
	}
	return lo + rand.N(ceiling-lo+1) //nolint:gosec // G404: backoff jitter, not a secret
}

// parseRetryAfter reads delay-seconds or an HTTP-date. A number of seconds
// too large for a time.Duration saturates at the longest one (the caller
// caps it), rather than wrapping round to a negative wait.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if isDigits(v) {
		s, err := strconv.ParseInt(v, 10, 64)
		if err != nil || s > int64(math.MaxInt64/time.Second) {
			return time.Duration(math.MaxInt64), true
		}
		return time.Duration(s) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

func isDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
