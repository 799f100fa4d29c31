//go:build !unix

package redistest

import "errors"

// canPause reports whether Pause and Resume work here.
const canPause = false

var errNoPause = errors.New("redistest: pausing a process needs SIGSTOP (unix only)")

func pause(*process) error  { return errNoPause }
func resume(*process) error { return errNoPause }
