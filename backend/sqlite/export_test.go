package sqlite

// Path returns the path of the file s's handle is on.
func Path(s *Store) string {
	var (
		seq        int
		name, file string
	)
	if err := s.db.QueryRow("PRAGMA database_list").Scan(&seq, &name, &file); err != nil {
		panic(err)
	}
	return file
}

// CleanupStatement returns the statement of one cleanup batch of s.
func CleanupStatement(s *Store) string { return s.names.fill(sqlCleanup) }
