//go:build !linux

package mariadbtest

import "syscall"

// setDeathSignal does nothing off Linux: there is no parent-death signal.
func setDeathSignal(*syscall.SysProcAttr) {}
