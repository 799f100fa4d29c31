package mysql

import (
	"context"
	"crypto/sha256"
	"database/sql"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// SchemaVersion is the version of the schema this package writes and reads.
// CreateSchema records it; New refuses tables of another version.
const SchemaVersion = 1

// DefaultTable is the table name when Options.Table is empty.
const DefaultTable = "sessions"

// maxTableLen is the longest table name (without its database): MySQL and
// MariaDB keep 64 characters of an identifier, and the longest derived name
// adds "_owners" (or "_schema").
const maxTableLen = 64 - len("_owners")

// maxNameLen is the longest database name.
const maxNameLen = 64

// lockWait bounds CreateSchema's wait for another instance's CreateSchema
// when ctx has no earlier deadline.
const lockWait = 60 * time.Second

//go:embed schema.sql
var schemaSQL string

// ident matches one unquoted name part Options.Table may hold.
var ident = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// names are the quoted identifiers of a store's tables.
type names struct {
	table, owners, schema string // quoted, database-qualified when the table is
	lock                  string // the name of CreateSchema's GET_LOCK
}

// tableNames validates table (empty: DefaultTable) and returns the quoted
// names derived from it. A table is a name, optionally qualified by a
// database ("app.sessions"); each part starts with a letter or an
// underscore and holds only ASCII letters, digits and underscores, the
// table part at most 57 characters, the database at most 64. Anything else
// (backticks, quotes, spaces, semicolons, ...) is refused, so no SQL can
// pass through Options.Table.
func tableNames(table string) (names, error) {
	if table == "" {
		table = DefaultTable
	}
	var db, name string
	switch parts := strings.Split(table, "."); len(parts) {
	case 1:
		name = parts[0]
	case 2:
		db, name = parts[0], parts[1]
		if !ident.MatchString(db) || len(db) > maxNameLen {
			return names{}, fmt.Errorf("sessions: mysql store: invalid database %q in Options.Table: want letters, digits and underscores, not starting with a digit, at most %d", db, maxNameLen)
		}
	default:
		return names{}, fmt.Errorf("sessions: mysql store: invalid Options.Table %q: want \"table\" or \"database.table\"", table)
	}
	if !ident.MatchString(name) || len(name) > maxTableLen {
		return names{}, fmt.Errorf("sessions: mysql store: invalid table name %q in Options.Table: want letters, digits and underscores, not starting with a digit, at most %d", name, maxTableLen)
	}
	q := func(n string) string {
		if db == "" {
			return "`" + n + "`"
		}
		return "`" + db + "`.`" + n + "`"
	}
	// GET_LOCK names are server-wide and at most 64 characters.
	sum := sha256.Sum256([]byte(table))
	return names{
		table:  q(name),
		owners: q(name + "_owners"),
		schema: q(name + "_schema"),
		lock:   "sessionx-sessions-schema-" + hex.EncodeToString(sum[:16]),
	}, nil
}

// fill replaces the placeholders of a statement with n's names.
func (n names) fill(sql string) string {
	return strings.NewReplacer(
		"{table}", n.table,
		"{owners}", n.owners,
		"{schema_table}", n.schema,
		// The write ids a row keeps (see write.go): one ? is the write's id.
		"{ours}", "? IN (SUBSTRING(writes, 1, 8), SUBSTRING(writes, 9, 8), SUBSTRING(writes, 17, 8), SUBSTRING(writes, 25, 8))",
		"{not_ours}", "? NOT IN (SUBSTRING(writes, 1, 8), SUBSTRING(writes, 9, 8), SUBSTRING(writes, 17, 8), SUBSTRING(writes, 25, 8))",
		"{push_id}", "writes = LEFT(CONCAT(?, writes), 32)",
	).Replace(sql)
}

// SchemaSQL returns the schema (the embedded file schema.sql) for the table
// named table (empty: DefaultTable), with every name quoted, for
// applications that apply their migrations with a tool of their own. Its
// statements end with semicolons; run them one at a time, or in one go on
// a connection with multiStatements=true. It returns an error for a table
// name Options.Table would refuse.
func SchemaSQL(table string) (string, error) {
	n, err := tableNames(table)
	if err != nil {
		return "", err
	}
	return n.fill(schemaSQL), nil
}

// CreateSchema creates the store's tables (schema.sql, see SchemaSQL) for
// opts.Table if they do not exist, and records SchemaVersion. It holds a
// named lock (GET_LOCK, released at the end) while it works, so that
// several application instances starting at once may all call it, and
// sends the schema's statements one at a time (DDL commits implicitly in
// MySQL: there is no transaction around them; each is idempotent). It
// changes nothing in tables that exist. It waits for another instance's
// CreateSchema at most until ctx's deadline (60 s without one). Only
// opts.Table is read from opts.
func CreateSchema(ctx context.Context, db *sql.DB, opts Options) error {
	if db == nil {
		return errors.New("sessions: mysql store: nil *sql.DB")
	}
	n, err := tableNames(opts.Table)
	if err != nil {
		return err
	}
	fail := func(err error) error { return fmt.Errorf("sessions: mysql store: creating the schema: %w", err) }
	conn, err := db.Conn(ctx) // GET_LOCK belongs to a connection
	if err != nil {
		return fail(err)
	}
	defer conn.Close()
	wait := lockWait
	if d, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(d))
	}
	// Whole seconds, rounded down, so that GET_LOCK answers before ctx
	// ends.
	secs := max(0, int64(wait.Seconds()))
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, ?)", n.lock, secs).Scan(&got); err != nil {
		return fail(fmt.Errorf("waiting for the lock %s: %w", n.lock, err))
	}
	if !got.Valid || got.Int64 != 1 {
		return fail(fmt.Errorf("the lock %s stayed held by another connection (another instance's CreateSchema?) for the %d s waited", n.lock, secs))
	}
	// The lock also ends with the connection, if the release is not heard.
	defer conn.ExecContext(context.WithoutCancel(ctx), "DO RELEASE_LOCK(?)", n.lock) //nolint:errcheck
	for _, stmt := range splitStatements(n.fill(schemaSQL)) {
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			return fail(err)
		}
	}
	return nil
}

// checkSchema returns an error unless the schema of n exists at
// SchemaVersion.
func checkSchema(ctx context.Context, db *sql.DB, n names) error {
	var version int
	err := db.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM "+n.schema).Scan(&version)
	var myErr *mysql.MySQLError
	switch {
	case errors.As(err, &myErr) && (myErr.Number == 1146 || myErr.Number == 1049): // no such table, no such database
		return fmt.Errorf("sessions: mysql store: no table %s: call CreateSchema first (or apply SchemaSQL): %w", n.schema, err)
	case err != nil:
		return fmt.Errorf("sessions: mysql store: cannot reach MySQL: %w", err)
	case version != SchemaVersion:
		return fmt.Errorf("sessions: mysql store: table %s is at schema version %d, this store knows %d", n.table, version, SchemaVersion)
	}
	return nil
}
