package admin

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/acmed/acmed/acme"
)

// DashboardPath is the read-only HTML page of the certificate estate. It
// sits beside the JSON API on the admin listener, behind the same
// authentication: a browser reaches it with a client certificate (or a
// proxy that adds the bearer token).
const DashboardPath = "/admin/"

const (
	// dashboardWithin is how far ahead the page looks for expiring
	// certificates.
	dashboardWithin = 7 * 24 * time.Hour
	// dashboardRows bounds each list on the page; the CLI pages further.
	dashboardRows = 200
)

//go:embed dashboard.html
var dashboardHTML string

// dashboardTemplate is parsed once; templates are safe for concurrent use.
var dashboardTemplate = template.Must(template.New("dashboard").Funcs(template.FuncMap{
	"utc":   func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	"days":  humanDuration,
	"until": func(now, t time.Time) string { return humanDuration(t.Sub(now)) },
	"ids": func(ids []acme.Identifier) string {
		vs := make([]string, len(ids))
		for i, id := range ids {
			vs[i] = id.Value
		}
		return strings.Join(vs, ", ")
	},
	"pct": func(part, whole int) int {
		if whole <= 0 {
			return 100
		}
		return part * 100 / whole
	},
}).Parse(dashboardHTML))

// humanDuration shows d in days and hours ("6d 23h", "45m"), the units an
// operator plans renewals in.
func humanDuration(d time.Duration) string {
	if d <= 0 {
		return "now"
	}
	days, hours := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour)
	switch {
	case days > 0 && hours > 0:
		return fmt.Sprintf("%dd %dh", days, hours)
	case days > 0:
		return fmt.Sprintf("%dd", days)
	case hours > 0:
		return fmt.Sprintf("%dh %dm", hours, int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dm", int(d/time.Minute))
}

// dashboardRoutes: GET /admin/ is the page; /admin sends a browser there.
func (s *Server) dashboardRoutes(r *mux.Router) {
	s.endpoint(r, DashboardPath, map[string]http.Handler{http.MethodGet: http.HandlerFunc(s.dashboard)})
	s.endpoint(r, strings.TrimSuffix(DashboardPath, "/"), map[string]http.Handler{http.MethodGet: http.RedirectHandler(DashboardPath, http.StatusMovedPermanently)})
}

// dashboard renders the whole page before sending it, so that a failing
// store is an error page, never half a table.
func (s *Server) dashboard(w http.ResponseWriter, r *http.Request) {
	by, _ := s.caller(r) // ServeHTTP let only callers in
	d, err := s.auth.AdminDashboard(r.Context(), by, dashboardWithin, dashboardRows)
	var page bytes.Buffer
	if err == nil {
		err = dashboardTemplate.Execute(&page, d)
	}
	// No script, style only inline, nothing fetched from elsewhere; the
	// page is not to be framed by another site.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err != nil {
		status, msg := s.translate(err)
		if status == http.StatusInternalServerError {
			s.log.ErrorContext(r.Context(), "admin dashboard failed", "caller", string(by), "err", err)
		}
		w.WriteHeader(status)
		_ = errorPage.Execute(w, msg)
		return
	}
	w.WriteHeader(http.StatusOK)
	_, _ = page.WriteTo(w)
}

var errorPage = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>acmed — dashboard unavailable</title></head>
<body><h1>The dashboard is unavailable</h1><p>{{.}}</p></body></html>
`))
