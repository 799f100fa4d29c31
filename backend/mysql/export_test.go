package mysql

// CleanupStatements returns the statements of one cleanup batch of s: the
// SELECT of dead rows and the DELETE of n of them; with owners, those of
// the owner records.
func CleanupStatements(s *Store, owners bool, n int) (find, del string) {
	if owners {
		return s.sql.deadOwners, withList(s.sql.deleteOwners, n)
	}
	return s.sql.deadKeys, withList(s.sql.deleteKeys, n)
}

// SplitStatements is splitStatements, for the fuzz test.
var SplitStatements = splitStatements

// SchemaLockName returns the name of the lock CreateSchema holds for table.
func SchemaLockName(table string) string {
	n, err := tableNames(table)
	if err != nil {
		panic(err)
	}
	return n.lock
}

// SetCleanupChunk sets how many dead rows one round of s's cleanup reads
// (100,000 otherwise).
func SetCleanupChunk(s *Store, n int) { s.chunk = n }

// SetAfterFind sets a function s's cleanup calls after each round's SELECT.
func SetAfterFind(s *Store, f func()) { s.afterFind = f }
