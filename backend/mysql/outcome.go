package mysql

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"

	"github.com/go-sql-driver/mysql"
)

// Error numbers of MySQL and MariaDB that the store acts on.
const (
	errDupEntry          = 1062 // ER_DUP_ENTRY: the key is taken
	errLockDeadlock      = 1213 // ER_LOCK_DEADLOCK: chosen as a deadlock's victim, rolled back
	errLockWaitTimeout   = 1205 // ER_LOCK_WAIT_TIMEOUT: waited innodb_lock_wait_timeout for a row lock
	errConCount          = 1040 // ER_CON_COUNT_ERROR: too many connections
	errServerShutdown    = 1053 // ER_SERVER_SHUTDOWN
	errQueryInterrupted  = 1317 // ER_QUERY_INTERRUPTED
	errConnectionKilled  = 1927 // ER_CONNECTION_KILLED (MariaDB)
	errClientIdleTimeout = 4031 // ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8)
)

// maxDeadlockRetries is how many times a write chosen as a deadlock's
// victim is run again before the store reports the deadlock.
const maxDeadlockRetries = 5

// notSent marks the error of a statement of which nothing reached the
// server: getting a connection failed, or the driver said so
// (driver.ErrBadConn, a packet larger than max_allowed_packet).
type notSent struct{ err error }

func (e notSent) Error() string { return e.err.Error() }
func (e notSent) Unwrap() error { return e.err }

// sent classifies the error of a statement run on a connection: the
// driver returns driver.ErrBadConn only when it sent nothing, and refuses
// a packet larger than max_allowed_packet before sending it.
func sent(err error) error {
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, mysql.ErrPktTooLarge) {
		return notSent{err}
	}
	return err
}

// mysqlError returns the server's error number in err, or 0 when the server
// did not answer with an error.
func mysqlError(err error) uint16 {
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) {
		return myErr.Number
	}
	return 0
}

// isDuplicate reports whether err is the server refusing a taken key.
func isDuplicate(err error) bool { return mysqlError(err) == errDupEntry }

// isDeadlock reports whether err is the server rolling the statement back
// as a deadlock's victim.
func isDeadlock(err error) bool { return mysqlError(err) == errLockDeadlock }

// outcomeUnknown reports whether err leaves open whether a statement was
// applied: anything but an error the server answered with (in autocommit
// mode the statement was rolled back) or one that happened before anything
// was sent (notSent), or the store's own verdict (errChanging).
func outcomeUnknown(err error) bool {
	var ns notSent
	switch {
	case errors.As(err, &ns), mysqlError(err) != 0, errors.Is(err, errChanging):
		return false
	}
	return true
}

// retryable reports whether sending a write again may succeed: a failure
// to connect or of the connection, or the server saying that it is
// shutting down, has too many connections, or that the statement lost a
// race (deadlock, lock wait) that it may win next time.
func retryable(err error) bool {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.Is(err, mysql.ErrPktTooLarge):
		return false
	}
	switch mysqlError(err) {
	case 0:
		return true // the connection failed, or nothing was sent
	case errLockDeadlock, errLockWaitTimeout, errConCount, errServerShutdown, errQueryInterrupted,
		errConnectionKilled, errClientIdleTimeout:
		return true
	}
	return false
}

// failed is the error of a write the server refused (nothing was written),
// or that could not be sent: err with the store's context, saying so
// plainly for the two locking errors.
func failed(op string, err error) error {
	switch mysqlError(err) {
	case errLockDeadlock:
		return fmt.Errorf("sessions: mysql %s: chosen as a deadlock's victim %d times in a row; nothing was written: %w", op, maxDeadlockRetries+1, err)
	case errLockWaitTimeout:
		return fmt.Errorf("sessions: mysql %s: lock wait timeout: another transaction held the session's row longer than innodb_lock_wait_timeout; nothing was written: %w", op, err)
	}
	return wrap(op, err)
}
