//go:build linux

package redistest

import (
	"os/exec"
	"syscall"
)

// setProcAttr ties a server's life to the test binary's: one killed by
// go test -timeout runs no cleanups, and its servers would stay listening.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
