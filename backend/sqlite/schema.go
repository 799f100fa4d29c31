package sqlite

import (
	"context"
	"database/sql"
	_ "embed"
	"errors"
	"fmt"
	"strings"
)

// SchemaVersion is the version of the schema this package writes and reads.
// CreateSchema records it; New refuses tables of another version.
const SchemaVersion = 1

// DefaultTable is the table name when Options.Table is empty.
const DefaultTable = "sessions"

// MaxTableLen is the longest Options.Table: SQLite sets no limit of its own,
// this one keeps the derived names (Table+"_owners_limit_idx" the longest)
// short enough to read.
const MaxTableLen = 48

//go:embed schema.sql
var schemaSQL string

// names are the quoted identifiers of a store's tables, indexes and
// triggers.
type names struct {
	table, owners, schema                  string // quoted
	expiresIdx, ownersLimitIdx             string // quoted
	ownerInsertTrigger, ownerUpdateTrigger string // quoted
	plain                                  string // the table's name unquoted, for messages
}

// validTable reports why table is not a name Options.Table accepts, or ""
// when it is one: 1 to MaxTableLen ASCII letters, digits and underscores,
// not starting with a digit, and neither "sqlite" nor starting with
// "sqlite_", in any case: SQLite reserves the names starting with
// "sqlite_", and those derived from "sqlite" (sqlite_owners, sqlite_schema,
// ...) would start so.
func validTable(table string) string {
	switch {
	case table == "":
		return "empty"
	case len(table) > MaxTableLen:
		return fmt.Sprintf("longer than %d characters", MaxTableLen)
	case strings.HasPrefix(strings.ToLower(table)+"_", "sqlite_"):
		return `names starting with "sqlite_" are SQLite's own, and so would be the names derived from "sqlite"`
	case table[0] >= '0' && table[0] <= '9':
		return "starts with a digit"
	}
	for i := 0; i < len(table); i++ {
		c := table[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return fmt.Sprintf("holds %q at byte %d: only ASCII letters, digits and underscores are allowed", c, i)
		}
	}
	return ""
}

// tableNames validates table (empty: DefaultTable) and returns the quoted
// names derived from it. Anything but ASCII letters, digits and underscores
// (quotes, spaces, dots, semicolons, ...) is refused, so no SQL can pass
// through Options.Table; the names are quoted all the same.
func tableNames(table string) (names, error) {
	if table == "" {
		table = DefaultTable
	}
	if why := validTable(table); why != "" {
		return names{}, fmt.Errorf("sessions: sqlite store: invalid Options.Table %q: %s", table, why)
	}
	q := func(suffix string) string { return `"` + table + suffix + `"` }
	return names{
		table:              q(""),
		owners:             q("_owners"),
		schema:             q("_schema"),
		expiresIdx:         q("_expires_idx"),
		ownersLimitIdx:     q("_owners_limit_idx"),
		ownerInsertTrigger: q("_owner_insert"),
		ownerUpdateTrigger: q("_owner_update"),
		plain:              table,
	}, nil
}

// fill replaces the placeholders of a statement with n's names.
func (n names) fill(sql string) string {
	return strings.NewReplacer(
		"{table}", n.table,
		"{owners}", n.owners,
		"{schema_table}", n.schema,
		"{expires_idx}", n.expiresIdx,
		"{owners_limit_idx}", n.ownersLimitIdx,
		"{owner_insert_trg}", n.ownerInsertTrigger,
		"{owner_update_trg}", n.ownerUpdateTrigger,
	).Replace(sql)
}

// SchemaSQL returns the schema (the embedded file schema.sql) for the table
// named table (empty: DefaultTable), with every name quoted, for
// applications that apply their migrations with a tool of their own. It
// returns an error for a table name Options.Table would refuse.
func SchemaSQL(table string) (string, error) {
	n, err := tableNames(table)
	if err != nil {
		return "", err
	}
	return n.fill(schemaSQL), nil
}

// CreateSchema creates the store's tables, indexes and triggers (schema.sql,
// see SchemaSQL) for opts.Table if they do not exist, and records
// SchemaVersion. It runs in one transaction begun with BEGIN IMMEDIATE,
// which takes the file's write lock first (waiting for it as the
// connection's busy_timeout says), so that several processes starting at
// once may all call it. It changes nothing in tables that exist. Only
// opts.Table is read from opts. Open calls it; New never does.
func CreateSchema(ctx context.Context, db *sql.DB, opts Options) error {
	if db == nil {
		return errors.New("sessions: sqlite store: nil *sql.DB")
	}
	n, err := tableNames(opts.Table)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		return fmt.Errorf("sessions: sqlite store: creating the schema of %s: %w", n.plain, err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return fail(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fail(err)
	}
	committed := false
	defer func() {
		if !committed {
			// Detached: a cancelled ctx must not leave the connection,
			// back in the pool, inside the transaction.
			rollback(context.WithoutCancel(ctx), conn)
		}
	}()
	// The driver runs the file's statements one after the other.
	if _, err := conn.ExecContext(ctx, n.fill(schemaSQL)); err != nil {
		return fail(err)
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fail(err)
	}
	committed = true
	return nil
}

// rollback ends the transaction open on conn, if one is. When even that
// fails, the connection is discarded rather than returned to the pool
// inside a transaction.
func rollback(ctx context.Context, conn *sql.Conn) {
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil && !strings.Contains(err.Error(), "no transaction is active") {
		_ = conn.Raw(func(any) error { return errBadConn })
	}
}

// checkSchema returns an error unless the schema of n exists at
// SchemaVersion.
func checkSchema(ctx context.Context, db *sql.DB, n names) error {
	var version int64
	err := db.QueryRowContext(ctx, "SELECT coalesce(max(version), 0) FROM "+n.schema).Scan(&version)
	switch {
	case err != nil && strings.Contains(err.Error(), "no such table"):
		return fmt.Errorf("sessions: sqlite store: no table %s: call CreateSchema first (or apply SchemaSQL): %w", n.schema, err)
	case err != nil:
		return fmt.Errorf("sessions: sqlite store: cannot read the database: %w", err)
	case version != SchemaVersion:
		return fmt.Errorf("sessions: sqlite store: table %s is at schema version %d, this store knows %d", n.table, version, SchemaVersion)
	}
	return nil
}
