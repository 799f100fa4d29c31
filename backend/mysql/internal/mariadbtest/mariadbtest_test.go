package mariadbtest

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

func TestMain(m *testing.M) { Main(m) }

// packet returns one protocol packet: length, sequence number, payload.
func packet(seq byte, payload string) []byte {
	n := len(payload)
	return append([]byte{byte(n), byte(n >> 8), byte(n >> 16), seq}, payload...)
}

// TestParserFindsCommands: the parser returns the packets of sequence 0 as
// commands, with their statement for COM_QUERY and COM_STMT_PREPARE, skips
// the others (handshake responses, continuation packets), and finds the
// same commands however the stream is cut.
func TestParserFindsCommands(t *testing.T) {
	long := strings.Repeat("x", 3*maxSQL)
	var stream []byte
	for _, p := range [][]byte{
		packet(1, "handshake response"),
		packet(0, "\x03SELECT 1"),
		packet(0, "\x16UPDATE t SET a = ?"),
		packet(0, "\x17\x01\x00\x00\x00"),
		packet(0, "\x19\x01\x00\x00\x00"),
		packet(0, ""), // an empty packet is no command
		packet(0, "\x03SELECT '"+long+"'"),
		packet(3, "auth switch response"),
		packet(0, "\x01"),
	} {
		stream = append(stream, p...)
	}
	want := []Command{
		{ComQuery, "SELECT 1"},
		{ComStmtPrepare, "UPDATE t SET a = ?"},
		{Code: ComStmtExecute},
		{Code: ComStmtClose},
		{ComQuery, ("SELECT '" + long)[:maxSQL]},
		{Code: ComQuit},
	}
	for _, chunk := range []int{len(stream), 1, 2, 3, 5, 7, 4096} {
		var p Parser
		var got []Command
		for b := stream; len(b) > 0; {
			n := min(chunk, len(b))
			got = append(got, p.Feed(b[:n])...)
			b = b[n:]
		}
		if !slices.Equal(got, want) {
			t.Errorf("in chunks of %d bytes: %d commands %v, want %d %v", chunk, len(got), got, len(want), want)
		}
	}
	if n := len(RoundTrips(want)); n != 4 {
		t.Errorf("RoundTrips: %d, want 4 (the close and the quit get no answer)", n)
	}
}

// FuzzParser: the parser never panics, and finds the same commands whether
// the stream comes whole or cut at any point.
func FuzzParser(f *testing.F) {
	f.Add(append(packet(0, "\x03SELECT 1"), packet(1, "x")...), 3)
	f.Add([]byte{0xff, 0xff, 0xff, 0x00, 0x03}, 1)
	f.Add([]byte{}, 0)
	f.Fuzz(func(t *testing.T, stream []byte, cut int) {
		var whole Parser
		want := whole.Feed(stream)
		if cut < 0 {
			cut = -cut
		}
		if len(stream) > 0 {
			cut %= len(stream) + 1
		} else {
			cut = 0
		}
		var p Parser
		got := append(p.Feed(stream[:cut]), p.Feed(stream[cut:])...)
		if !slices.Equal(got, want) {
			t.Fatalf("cut at %d: %v, whole: %v", cut, got, want)
		}
		for _, c := range got {
			if len(c.SQL) > maxSQL {
				t.Fatalf("a command kept %d bytes of statement", len(c.SQL))
			}
		}
	})
}

// TestServerRestartsWithItsData: a private server serves SQL, keeps its
// data across Stop and Start on the same port, and its Wire sees the
// commands sent.
func TestServerRestartsWithItsData(t *testing.T) {
	srv := Start(t)
	var w Wire
	db := srv.DB(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE TABLE kept (a INT PRIMARY KEY) ENGINE=InnoDB"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO kept VALUES (7)"); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	if srv.Running() {
		t.Fatal("running after Stop")
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	traced := srv.DB(t, func(c *mysql.Config) { c.DialFunc = w.Dial })
	w.Take() // the connection's own setup
	var a int
	if err := traced.QueryRowContext(ctx, "SELECT a FROM kept").Scan(&a); err != nil || a != 7 {
		t.Fatalf("after a restart: %d, %v; want the row kept", a, err)
	}
	cmds := RoundTrips(w.Take())
	if len(cmds) != 1 || cmds[0].Code != ComQuery || cmds[0].SQL != "SELECT a FROM kept" {
		t.Fatalf("the wire saw %v, want the one query", cmds)
	}
}
