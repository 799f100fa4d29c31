package sqlite

import (
	"context"
	"time"
)

// CheckpointEvery is how often, at most, a Store checkpoints the file's
// write-ahead log after writes.
//
// In WAL mode a commit appends pages to the -wal file, and a checkpoint
// copies them back into the database file (and syncs it), so that the
// -wal file can start over. Left to itself, SQLite checkpoints inside the
// commit that brings the -wal file past 1,000 pages: that request pays for
// the copy and the sync (from a few to hundreds of milliseconds on a busy
// disk), and so does every write waiting for the write lock meanwhile.
// DSN therefore turns those automatic checkpoints off
// (wal_autocheckpoint(0)), and every Store runs them instead from a
// goroutine of its own, off the requests' path: a PASSIVE checkpoint, which
// never waits for a writer nor makes one wait, at most once per
// CheckpointEvery after a write of its own. The -wal file then holds at
// most about a second of writes beyond what readers still use. With
// several processes on a file, each Store checkpoints after its own
// writes; a handle of the application's own given to New keeps whatever
// wal_autocheckpoint it was opened with, and the Store checkpoints as well.
const CheckpointEvery = time.Second

// wrote tells the checkpointer that this Store wrote to the file.
func (s *Store) wrote() {
	select {
	case s.dirty <- struct{}{}:
	default:
	}
}

// checkpointLoop checkpoints the file after writes (see CheckpointEvery)
// until ctx ends (Close).
func (s *Store) checkpointLoop(ctx context.Context) {
	defer close(s.checkpointDone)
	pause := time.NewTimer(0)
	defer pause.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.dirty:
		}
		if _, err := s.db.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)"); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "sessions: sqlite checkpoint failed", "table", s.names.plain, "err", err)
		}
		pause.Reset(CheckpointEvery)
		select {
		case <-ctx.Done():
			return
		case <-pause.C:
		}
	}
}
