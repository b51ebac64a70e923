//go:build !linux

package wttest

import "os/exec"

// dieWithParent has no portable equivalent off Linux: use wttest.Main.
func dieWithParent(cmd *exec.Cmd) {}
