package sqlite_test

import (
	"errors"
	"io/fs"
	"os"
	"testing"
)

// fileSize returns the size of the file at path, 0 if there is none.
func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
