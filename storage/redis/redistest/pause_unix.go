//go:build unix

package redistest

import (
	"syscall"
	"testing"
)

// Pause stops the server with SIGSTOP: it keeps its connections but
// answers nothing, as a server stalled by its host would. Resume undoes
// it; a server still paused when the test ends is resumed, so it can
// stop.
func (s *Server) Pause(t testing.TB) {
	t.Helper()
	s.mustRun(t, "Pause")
	if err := s.proc.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("redistest: Pause %s: %v", s.Addr, err)
	}
	p := s.proc
	t.Cleanup(func() { _ = p.cmd.Process.Signal(syscall.SIGCONT) })
}

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume(t testing.TB) {
	t.Helper()
	s.mustRun(t, "Resume")
	if err := s.proc.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatalf("redistest: Resume %s: %v", s.Addr, err)
	}
}
