package sessions

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
)

// errCommitFailed is what the handler's writes return after the session
// could not be committed and the ErrorHandler took over the response.
var errCommitFailed = errors.New("sessions: response dropped: the session could not be saved")

// committer is what commitWriter needs of the Manager: commit the session,
// and after a failed commit put the header back as it was before the
// handler ran.
type committer interface {
	commit() error
	restoreHeader()
}

// commitWriter wraps the ResponseWriter of Manager.Handler to commit the
// session just before the response header goes out.
type commitWriter struct {
	rw        http.ResponseWriter
	c         committer
	committed bool
	err       error // the commit's error
}

// doCommit runs the commit once and remembers its outcome. On failure it
// restores the header map to what it was before the handler ran, so that
// nothing the handler set (a redirect, a type) goes out with the error
// response.
func (cw *commitWriter) doCommit() error {
	if cw.committed {
		return cw.err
	}
	cw.committed = true
	cw.err = cw.c.commit()
	if cw.err != nil {
		cw.c.restoreHeader()
	}
	return cw.err
}

// Header returns the header map of the wrapped ResponseWriter.
func (cw *commitWriter) Header() http.Header { return cw.rw.Header() }

// WriteHeader commits the session, then writes the header.
func (cw *commitWriter) WriteHeader(code int) {
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		cw.rw.WriteHeader(code)
		return
	}
	if cw.fail() {
		return
	}
	cw.rw.WriteHeader(code)
}

// Write commits the session, then writes p.
func (cw *commitWriter) Write(p []byte) (int, error) {
	if cw.fail() {
		return 0, errCommitFailed
	}
	return cw.rw.Write(p)
}

// ReadFrom commits the session, then copies from r, using the wrapped
// writer's io.ReaderFrom (sendfile) when it has one.
func (cw *commitWriter) ReadFrom(r io.Reader) (int64, error) {
	if cw.fail() {
		return 0, errCommitFailed
	}
	if rf, ok := cw.rw.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(writerOnly{cw.rw}, r)
}

// Flush commits the session, then flushes.
func (cw *commitWriter) Flush() {
	_ = cw.FlushError()
}

// FlushError commits the session, then flushes, reporting errors; it is what
// http.ResponseController.Flush calls.
func (cw *commitWriter) FlushError() error {
	if cw.fail() {
		return errCommitFailed
	}
	return http.NewResponseController(cw.rw).Flush()
}

// Hijack commits the session, then hands over the connection. It fails with
// an error wrapping http.ErrNotSupported when the wrapped writer cannot be
// hijacked (HTTP/2).
func (cw *commitWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if cw.fail() {
		return nil, nil, errCommitFailed
	}
	conn, brw, err := http.NewResponseController(cw.rw).Hijack()
	if err != nil {
		return nil, nil, fmt.Errorf("sessions: hijack: %w", err)
	}
	return conn, brw, nil
}

// Unwrap returns the wrapped ResponseWriter, for http.ResponseController.
func (cw *commitWriter) Unwrap() http.ResponseWriter { return cw.rw }

// fail commits the session if that is still to do and reports whether the
// response is lost to a failed commit.
func (cw *commitWriter) fail() bool {
	return cw.doCommit() != nil
}

// writerOnly hides everything but Write, so io.Copy does not recurse into
// ReadFrom.
type writerOnly struct{ io.Writer }
