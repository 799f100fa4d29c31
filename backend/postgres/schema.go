package postgres

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// SchemaVersion is the version of the schema this package writes and reads.
// CreateSchema records it; New refuses tables of another version.
const SchemaVersion = 1

// DefaultTable is the table name when Options.Table is empty.
const DefaultTable = "sessions"

// maxTableLen is the longest table name (without its schema): PostgreSQL
// keeps 63 bytes of an identifier, and the longest derived name adds
// "_owners_limit_idx".
const maxTableLen = 63 - len("_owners_limit_idx")

//go:embed schema.sql
var schemaSQL string

// ident matches one unquoted name part Options.Table may hold.
var ident = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// names are the quoted identifiers of a store's tables and indexes.
type names struct {
	table, owners, schema      string // quoted, schema-qualified when the table is
	expiresIdx, ownersLimitIdx string // quoted, never qualified (an index lives in its table's schema)
	lockKey                    string // the unquoted table name, for CreateSchema's advisory lock
}

// tableNames validates table (empty: DefaultTable) and returns the quoted
// names derived from it. A table is a name, optionally qualified by a
// schema ("app.sessions"); each part starts with a letter or an underscore
// and holds only ASCII letters, digits and underscores, the table part at
// most 46 characters. Anything else (quotes, spaces, semicolons, ...) is
// refused, so no SQL can pass through Options.Table.
func tableNames(table string) (names, error) {
	if table == "" {
		table = DefaultTable
	}
	var schema, name string
	switch parts := strings.Split(table, "."); len(parts) {
	case 1:
		name = parts[0]
	case 2:
		schema, name = parts[0], parts[1]
		if !ident.MatchString(schema) || len(schema) > 63 {
			return names{}, fmt.Errorf("sessions: postgres store: invalid schema %q in Options.Table: want letters, digits and underscores, not starting with a digit, at most 63", schema)
		}
	default:
		return names{}, fmt.Errorf("sessions: postgres store: invalid Options.Table %q: want \"table\" or \"schema.table\"", table)
	}
	if !ident.MatchString(name) || len(name) > maxTableLen {
		return names{}, fmt.Errorf("sessions: postgres store: invalid table name %q in Options.Table: want letters, digits and underscores, not starting with a digit, at most %d", name, maxTableLen)
	}
	q := func(n string) string {
		if schema == "" {
			return pgx.Identifier{n}.Sanitize()
		}
		return pgx.Identifier{schema, n}.Sanitize()
	}
	return names{
		table:          q(name),
		owners:         q(name + "_owners"),
		schema:         q(name + "_schema"),
		expiresIdx:     pgx.Identifier{name + "_expires_idx"}.Sanitize(),
		ownersLimitIdx: pgx.Identifier{name + "_owners_limit_idx"}.Sanitize(),
		lockKey:        table,
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
		// GetTouch's slide (backend.Slide) for a row with an idle timeout
		// of its own (nanoseconds; timestamptz keeps microseconds).
		"{slide_to}", "(CASE WHEN idle > 0 THEN $2::timestamptz + (idle / 1000) * interval '1 microsecond' ELSE $4::timestamptz END)",
		"{slide_if_before}", "(CASE WHEN idle > 0 THEN $2::timestamptz + (idle / 1000) * interval '1 microsecond'"+
			" - least($4::timestamptz - $3::timestamptz, (idle / 10000) * interval '1 microsecond') ELSE $3::timestamptz END)",
	).Replace(sql)
}

// SchemaSQL returns the schema (the embedded file schema.sql) for the table
// named table (empty: DefaultTable), with every name quoted, for applications
// that apply their migrations with a tool of their own. It returns an error
// for a table name Options.Table would refuse.
func SchemaSQL(table string) (string, error) {
	n, err := tableNames(table)
	if err != nil {
		return "", err
	}
	return n.fill(schemaSQL), nil
}

// CreateSchema creates the store's tables and indexes (schema.sql, see
// SchemaSQL) for opts.Table if they do not exist, and records SchemaVersion.
// It runs in one transaction under an advisory lock, so that several
// application instances starting at once may all call it. It changes
// nothing in tables that exist. Only opts.Table is read from opts.
func CreateSchema(ctx context.Context, db DB, opts Options) error {
	if db == nil {
		return errors.New("sessions: postgres store: nil DB")
	}
	n, err := tableNames(opts.Table)
	if err != nil {
		return err
	}
	tx, err := db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("sessions: postgres store: creating the schema: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after Commit it does nothing
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext($1))", "sessionx/sessions:"+n.lockKey); err != nil {
		return fmt.Errorf("sessions: postgres store: creating the schema: %w", err)
	}
	// The simple protocol runs the file's several statements in one go.
	if _, err := tx.Exec(ctx, n.fill(schemaSQL), pgx.QueryExecModeSimpleProtocol); err != nil {
		return fmt.Errorf("sessions: postgres store: creating the schema: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("sessions: postgres store: creating the schema: %w", err)
	}
	return nil
}

// checkSchema returns an error unless the schema of n exists at
// SchemaVersion.
func checkSchema(ctx context.Context, db DB, n names) error {
	var version int
	err := db.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM "+n.schema).Scan(&version)
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "42P01": // undefined_table
		return fmt.Errorf("sessions: postgres store: no table %s: call CreateSchema first (or apply SchemaSQL): %w", n.schema, err)
	case err != nil:
		return fmt.Errorf("sessions: postgres store: cannot reach PostgreSQL: %w", err)
	case version != SchemaVersion:
		return fmt.Errorf("sessions: postgres store: table %s is at schema version %d, this store knows %d", n.table, version, SchemaVersion)
	}
	return nil
}
