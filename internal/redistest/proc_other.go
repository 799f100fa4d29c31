//go:build !linux

package redistest

import "os/exec"

// setProcAttr does nothing off Linux: there is no parent-death signal.
func setProcAttr(*exec.Cmd) {}
