//go:build !linux

package redistest

import "os/exec"

// setProcAttr does nothing where the kernel cannot kill a child with its
// parent; t.Cleanup still stops servers on every ordinary exit.
func setProcAttr(*exec.Cmd) {}
