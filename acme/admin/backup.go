package admin

import (
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/gorilla/mux"

	"github.com/acmed/acmed/acme/authority"
)

// redisBackupAdvice is what an operator of a Redis store is told instead.
const redisBackupAdvice = "the store is Redis, which acmed does not copy: use Redis's own persistence — " +
	"BGSAVE (then copy dump.rdb once LASTSAVE moves) or AOF (appendonly yes), on the master or a replica"

// backupRoutes:
//
//	GET /admin/v1/backup  the embedded store's file, as of one moment, streamed
func (s *Server) backupRoutes(api *mux.Router) {
	s.endpoint(api, "/backup", map[string]http.Handler{http.MethodGet: http.HandlerFunc(s.backup)})
}

// backup streams a consistent copy with its exact Content-Length, so a
// client tells a cut transfer from a whole file. Once streaming has begun
// an error can only cut the connection short.
func (s *Server) backup(w http.ResponseWriter, r *http.Request) {
	by, _ := s.caller(r)
	started := false
	_, err := s.auth.Backup(r.Context(), by, func(size int64) (io.Writer, error) {
		started = true
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		w.Header().Set("Content-Disposition", `attachment; filename="acmed.db"`)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		return w, nil
	})
	switch {
	case err == nil:
	case errors.Is(err, authority.ErrNoBackup):
		s.writeError(w, r, http.StatusNotImplemented, redisBackupAdvice)
	case !started:
		status, msg := s.translate(err)
		s.writeError(w, r, status, msg)
	default:
		s.log.ErrorContext(r.Context(), "backup cut short", "caller", string(by), "err", err)
	}
}
