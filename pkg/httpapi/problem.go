package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rickmorty/rickmorty/pkg/character"
)

// codeStatus is the one table from domain error codes to HTTP statuses.
var codeStatus = map[string]int{
	character.EINVALID:     http.StatusUnprocessableEntity,
	character.ENOTFOUND:    http.StatusNotFound,
	character.EUNAVAILABLE: http.StatusServiceUnavailable,
	character.ERATELIMITED: http.StatusTooManyRequests,
	character.EINTERNAL:    http.StatusInternalServerError,
}

// problem is an RFC 9457 (formerly 7807) problem detail.
type problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail"`
	Instance string `json:"instance"`
	// Param names the offending request parameter of a 422.
	Param string `json:"param,omitempty"`
}

// echoDetails replaces Echo's own messages with fixed, client-facing text.
var echoDetails = map[int]string{
	http.StatusNotFound:              "No resource exists at this path.",
	http.StatusMethodNotAllowed:      "This resource only supports GET and HEAD.",
	http.StatusRequestEntityTooLarge: "The request body is too large; this API reads no request bodies.",
	http.StatusServiceUnavailable:    "The service cannot answer right now; try again later.",
}

// handleError renders every error as problem+json. Only messages written
// for clients (character.Error) reach the body; causes go to the log.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	p := problem{Type: "about:blank", Instance: c.Request().URL.Path}
	var (
		de *character.Error
		he *echo.HTTPError
	)
	switch {
	case errors.As(err, &de):
		p.Status = codeStatus[de.Code]
		if p.Status == 0 {
			p.Status = http.StatusInternalServerError
		}
		p.Detail, p.Param = de.Message, de.Param
		if p.Status >= 500 && de.Err != nil {
			s.log.WarnContext(c.Request().Context(), "request failed", "route", c.Path(), "err", err)
		}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		p.Status = http.StatusServiceUnavailable
		p.Detail = "The request took too long; try again later."
	case errors.As(err, &he):
		p.Status = he.Code
		p.Detail = echoDetails[he.Code]
		if p.Detail == "" {
			p.Detail = http.StatusText(he.Code) + "."
		}
		if he.Code >= 500 {
			s.log.ErrorContext(c.Request().Context(), "request failed", "route", c.Path(), "err", err)
		}
	default:
		p.Status = http.StatusInternalServerError
		s.log.ErrorContext(c.Request().Context(), "request failed", "route", c.Path(), "err", err)
	}
	if p.Status == http.StatusInternalServerError {
		p.Detail = "An unexpected error occurred."
	}
	p.Title = http.StatusText(p.Status)
	if p.Status == http.StatusServiceUnavailable && c.Response().Header().Get("Retry-After") == "" {
		c.Response().Header().Set("Retry-After", retryAfterSeconds(s.cfg.RetryAfter))
	}
	writeProblem(c, p)
}

func writeProblem(c echo.Context, p problem) {
	body, err := json.Marshal(p)
	if err != nil { // unreachable: the struct has only strings and ints
		body = []byte(`{"type":"about:blank","title":"Internal Server Error","status":500}`)
	}
	h := c.Response().Header()
	// A validator or cache directive set before the failure must not
	// describe the problem body.
	h.Del("Etag")
	h.Del("Link")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "application/problem+json")
	c.Response().WriteHeader(p.Status)
	if c.Request().Method != http.MethodHead {
		_, _ = c.Response().Write(body)
	}
}

// retryAfterSeconds rounds d up to whole seconds, at least 1.
func retryAfterSeconds(d time.Duration) string {
	n := int64((d + time.Second - 1) / time.Second)
	return strconv.FormatInt(max(n, 1), 10)
}
