package wttest

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the host exit if the test binary dies without
// stopping it (a panic, a timeout kill).
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
