//go:build unix

package redistest

import "syscall"

// canPause reports whether Pause and Resume work here.
const canPause = true

// pause stops p (SIGSTOP): it keeps its sockets, the kernel still accepts
// connections and buffers what clients send, but nothing is answered.
func pause(p *process) error { return p.cmd.Process.Signal(syscall.SIGSTOP) }

// resume continues a paused p (SIGCONT).
func resume(p *process) error { return p.cmd.Process.Signal(syscall.SIGCONT) }
