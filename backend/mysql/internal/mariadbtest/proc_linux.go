//go:build linux

package mariadbtest

import "syscall"

// setDeathSignal makes the kernel kill the child if the test binary dies
// without running its cleanups (a go test -timeout panic, say), so that no
// server outlives the tests.
func setDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
