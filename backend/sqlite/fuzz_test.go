package sqlite_test

import (
	"context"
	"database/sql"
	"math"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessionx/sessions/backend/sqlite"
)

// FuzzSchemaSQL: Options.Table is the one input of the package that
// reaches SQL text. SchemaSQL (whose check New, Open and CreateSchema
// share) accepts exactly the names of the documented form (1 to
// MaxTableLen ASCII letters, digits and underscores, not starting with a
// digit, neither "sqlite" nor starting with "sqlite_", in any case),
// refuses every other with an error and no SQL, and what it makes of an
// accepted name is the shipped schema with only the quoted identifiers
// changed: the name appears nowhere but inside double quotes. SQLite
// agrees: run in a database of its own, the SQL creates the store's seven
// objects, named after the table, and nothing else. (It found "SQLitE",
// whose derived names SQLite refused as its own.)
func FuzzSchemaSQL(f *testing.F) {
	for _, s := range []string{
		"", "sessions", "web_sessions", "_", "A1", "Mixed_Case", "1a", "two words", "semi;colon",
		`x"; DROP TABLE y; --`, `x"`, `"quoted"`, "x'", "x--", "x/*", "x)", "main.sessions", "sqlite_x", "SQLite_", "sqlite", "SQLitE",
		"sqlitex", "séssions", "a\x00", "a\n", strings.Repeat("x", sqlite.MaxTableLen), strings.Repeat("x", sqlite.MaxTableLen+1),
		"select", "table", "sessions_owners",
	} {
		f.Add(s)
	}
	valid := regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	quoted := regexp.MustCompile(`"[^"]*"`)
	// The reference: a name that no text of schema.sql holds, so that every
	// identifier derived from it is told from the constant text.
	ref, err := sqlite.SchemaSQL("zzref")
	if err != nil {
		f.Fatal(err)
	}
	refIDs := quoted.FindAllString(ref, -1)
	refShape := quoted.ReplaceAllLiteralString(ref, `"?"`)
	if strings.Count(ref, `"`)%2 != 0 || len(refIDs) < 7 {
		f.Fatalf("the reference schema has %d double quotes, %d quoted names", strings.Count(ref, `"`), len(refIDs))
	}

	f.Fuzz(func(t *testing.T, table string) {
		got, err := sqlite.SchemaSQL(table)
		name := table
		if name == "" {
			name = sqlite.DefaultTable
		}
		ok := valid.MatchString(name) && len(name) <= sqlite.MaxTableLen && !strings.HasPrefix(strings.ToLower(name)+"_", "sqlite_")
		if ok != (err == nil) {
			t.Fatalf("SchemaSQL(%q): %v; the name is of the documented form: %v", table, err, ok)
		}
		if err != nil {
			if got != "" || !strings.Contains(err.Error(), "invalid Options.Table") {
				t.Fatalf("SchemaSQL(%q) refused it with SQL %q and error %v", table, got, err)
			}
			return
		}

		// Only the identifiers differ from the reference ...
		if shape := quoted.ReplaceAllLiteralString(got, `"?"`); shape != refShape {
			t.Fatalf("SchemaSQL(%q) differs from the shipped schema outside quoted names:\n%s", table, got)
		}
		// ... each the reference's with the name in place of zzref.
		ids := quoted.FindAllString(got, -1)
		if len(ids) != len(refIDs) {
			t.Fatalf("SchemaSQL(%q) holds %d quoted names, want %d", table, len(ids), len(refIDs))
		}
		for i, id := range ids {
			want := refIDs[i]
			if rest, derived := strings.CutPrefix(want, `"zzref`); derived {
				want = `"` + name + rest
			}
			if id != want {
				t.Fatalf("SchemaSQL(%q): quoted name %d is %s, want %s", table, i, id, want)
			}
		}
		if !strings.Contains(got, `CREATE TABLE IF NOT EXISTS "`+name+`" (`) {
			t.Fatalf("SchemaSQL(%q) does not create %q", table, name)
		}

		// SQLite runs it and creates the seven objects, nothing else.
		db, err := sql.Open(sqlite.DriverName, ":memory:")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		db.SetMaxOpenConns(1) // one memory database
		if _, err := db.Exec(got); err != nil {
			t.Fatalf("SchemaSQL(%q) does not run: %v", table, err)
		}
		rows, err := db.Query(`SELECT name FROM sqlite_schema WHERE name NOT GLOB 'sqlite_autoindex_*' ORDER BY name`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var objects []string
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
			objects = append(objects, n)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		want := []string{name, name + "_expires_idx", name + "_owner_insert", name + "_owner_update",
			name + "_owners", name + "_owners_limit_idx", name + "_schema"}
		slices.Sort(want)
		if !slices.Equal(objects, want) {
			t.Fatalf("SchemaSQL(%q) created %q, want %q", table, objects, want)
		}
	})
}

// FuzzDSN: DSN turns any file path into a URI that SQLite and
// modernc.org/sqlite read as that file and the store's pragmas, nothing
// else. It refuses exactly "", ":memory:", "file:" URIs, paths holding a
// NUL byte and a negative BusyTimeout. For every other path: SQLite reads
// the URI's file (up to the first '?' or '#', %HH decoded, after an empty
// authority) as the path made absolute, so no character of the path can
// end it early, add a parameter (mode=memory, vfs=...) or a fragment; and
// the query the driver reads (after the first '?') holds the four _pragma
// parameters and nothing more, busy_timeout at the BusyTimeout in
// milliseconds (at least 1, at most 2^31-1: SQLite reads it as an int;
// DefaultBusyTimeout for 0).
func FuzzDSN(f *testing.F) {
	for _, s := range []string{
		"sessions.db", "/var/lib/app/sessions.db", "dir/../s.db", "a?mode=memory", "a#frag", "a%41", "a%", "%00",
		"a&_pragma=journal_mode(DELETE)", "a?_pragma=synchronous(OFF)&vfs=memdb", "with space.db", "ünï.db", "\xff\xfe",
		":memory:", "./:memory:", "", "file:x.db", "FILE:x.db", "a\x00b", "?", "#", "%", "a;b=c,d+e@f$g", `C:\dir\s.db`, "//host/share",
	} {
		for _, ms := range []int64{0, 1, 250, -1} {
			f.Add(s, ms)
		}
	}
	f.Fuzz(func(t *testing.T, path string, busyMS int64) {
		busy := time.Duration(busyMS) * time.Millisecond
		dsn, err := sqlite.DSN(path, sqlite.Options{BusyTimeout: busy})
		refused := path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") || strings.ContainsRune(path, 0) || busy < 0
		if refused != (err != nil) {
			t.Fatalf("DSN(%q, %v): %q, %v; want refused: %v", path, busy, dsn, err, refused)
		}
		if err != nil {
			return
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			t.Skip(err) // no working directory
		}
		abs = filepath.ToSlash(abs)
		if !strings.HasPrefix(abs, "/") {
			abs = "/" + abs
		}

		// As SQLite reads it (sqlite3ParseUri).
		rest, ok := strings.CutPrefix(dsn, "file://")
		if !ok || !strings.HasPrefix(rest, "/") {
			t.Fatalf("DSN(%q) = %q: not file: with an empty authority", path, dsn)
		}
		end := strings.IndexAny(rest, "?#")
		if end < 0 || rest[end] != '?' {
			t.Fatalf("DSN(%q) = %q: the file is not followed by the query", path, dsn)
		}
		file, ok := uriDecode(rest[:end])
		if !ok || file != abs {
			t.Fatalf("DSN(%q) = %q: SQLite reads the file %q (%v), want %q", path, dsn, file, ok, abs)
		}
		query := rest[end+1:]
		if strings.ContainsRune(query, '#') {
			t.Fatalf("DSN(%q) = %q: a fragment would cut the query short", path, dsn)
		}

		// As modernc.org/sqlite reads it: the query after the first '?',
		// whose _pragma parameters it runs on every connection.
		if q := dsn[strings.IndexByte(dsn, '?')+1:]; q != query {
			t.Fatalf("DSN(%q) = %q: the driver reads the query %q, SQLite %q", path, dsn, q, query)
		}
		params, err := url.ParseQuery(query)
		if err != nil {
			t.Fatalf("DSN(%q) = %q: query %v", path, dsn, err)
		}
		ms := sqlite.DefaultBusyTimeout.Milliseconds()
		if busy > 0 {
			ms = min(max(busy.Milliseconds(), 1), math.MaxInt32)
		}
		want := url.Values{"_pragma": {
			"busy_timeout(" + strconv.FormatInt(ms, 10) + ")", "journal_mode(WAL)", "synchronous(NORMAL)", "wal_autocheckpoint(0)",
		}}
		if len(params) != 1 || !slices.Equal(params["_pragma"], want["_pragma"]) {
			t.Fatalf("DSN(%q, %v) = %q: parameters %q, want %q", path, busy, dsn, params, want)
		}
	})
}

// uriDecode decodes the file part of an SQLite URI as sqlite3ParseUri does:
// %HH is the byte HH (%00 ends the name: reported as not ok), everything
// else stands for itself.
func uriDecode(s string) (string, bool) {
	hex := func(c byte) (byte, bool) {
		switch {
		case c >= '0' && c <= '9':
			return c - '0', true
		case c >= 'a' && c <= 'f':
			return c - 'a' + 10, true
		case c >= 'A' && c <= 'F':
			return c - 'A' + 10, true
		}
		return 0, false
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			hi, ok1 := hex(s[i+1])
			lo, ok2 := hex(s[i+2])
			if ok1 && ok2 {
				if hi == 0 && lo == 0 {
					return b.String(), false
				}
				b.WriteByte(hi<<4 | lo)
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String(), true
}

// FuzzOwnerIndex: the owner index passes key lists to SQLite as a JSON
// array (RemoveOwned, and the read-back of an open outcome), which SQLite's
// json_each parses. For any owner string (NUL bytes and invalid UTF-8
// included: the store keeps its SHA-256) and any keys of the form the
// core uses (printable ASCII: quotes, backslashes, brackets and commas
// included), AddOwned then RemoveOwned of some of them leaves Owned
// listing exactly the others.
func FuzzOwnerIndex(f *testing.F) {
	st := openStore(f, filepath.Join(f.TempDir(), "fuzz.db"), sqlite.Options{CleanupInterval: -1})
	f.Add("ann", "a\nb\nc", uint8(1))
	f.Add("", "", uint8(0))
	f.Add("\x00\xff", "k\"1\nk\\2\n<&>\n[]\nnull\n,\n\"\n\\u0041", uint8(3))
	f.Add("bob", "same\nsame\nother", uint8(2))
	f.Fuzz(func(t *testing.T, owner, list string, remove uint8) {
		ctx := context.Background()
		var keys []string
		for k := range strings.SplitSeq(list, "\n") {
			b := []byte(k)
			for i, c := range b {
				b[i] = ' ' + c%95 // printable ASCII
			}
			if len(b) <= 64 && !slices.Contains(keys, string(b)) && len(keys) < 20 {
				keys = append(keys, string(b))
			}
		}
		old, err := st.Owned(ctx, owner)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.RemoveOwned(ctx, owner, old...); err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if err := st.AddOwned(ctx, owner, k, time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		n := int(remove) % (len(keys) + 1)
		if err := st.RemoveOwned(ctx, owner, keys[:n]...); err != nil {
			t.Fatal(err)
		}
		got, err := st.Owned(ctx, owner)
		if err != nil {
			t.Fatal(err)
		}
		want := slices.Clone(keys[n:])
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("owner %q: added %q, removed %q: Owned = %q, want %q", owner, keys, keys[:n], got, want)
		}
	})
}
