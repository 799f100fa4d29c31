package postgres

// CleanupStatement returns the statement of one cleanup batch of s.
func CleanupStatement(s *Store) string { return s.sql.cleanup }
