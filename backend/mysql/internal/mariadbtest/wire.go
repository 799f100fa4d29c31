package mariadbtest

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
)

// Commands of the client/server protocol that the tests name.
const (
	ComQuit        = 0x01
	ComQuery       = 0x03
	ComPing        = 0x0e
	ComStmtPrepare = 0x16
	ComStmtExecute = 0x17
	ComStmtLong    = 0x18 // COM_STMT_SEND_LONG_DATA
	ComStmtClose   = 0x19
	ComStmtReset   = 0x1a
)

// maxSQL bounds the statement text a Command keeps (an interpolated 1 MiB
// value would otherwise be kept whole).
const maxSQL = 4096

// Command is one command a client sent to the server: the first packet of a
// command phase (sequence number 0), as the server receives it.
type Command struct {
	Code byte   // the command byte (ComQuery, ComStmtPrepare, ...)
	SQL  string // the statement of a ComQuery or ComStmtPrepare, at most 4 KiB of it
}

// RoundTrip reports whether the server answers c: every command but
// COM_QUIT, COM_STMT_CLOSE and COM_STMT_SEND_LONG_DATA, which the protocol
// answers with nothing.
func (c Command) RoundTrip() bool {
	switch c.Code {
	case ComQuit, ComStmtClose, ComStmtLong:
		return false
	}
	return true
}

// String names c by its command and the first words of its statement.
func (c Command) String() string {
	name := map[byte]string{ComQuit: "quit", ComQuery: "query", ComPing: "ping", ComStmtPrepare: "prepare",
		ComStmtExecute: "execute", ComStmtLong: "long data", ComStmtClose: "close", ComStmtReset: "reset"}[c.Code]
	if name == "" {
		name = fmt.Sprintf("command 0x%02x", c.Code)
	}
	if c.SQL == "" {
		return name
	}
	f := strings.Fields(c.SQL)
	return name + " " + strings.Join(f[:min(len(f), 4)], " ")
}

// Wire records the commands that clients send through the connections it
// dials: plug Dial into mysql.Config.DialFunc. The commands are counted on
// the wire, as the server receives them, so that a count includes what the
// driver sends of its own (prepares, closes) and nothing that stays in the
// client. Safe for concurrent use.
type Wire struct {
	mu   sync.Mutex
	cmds []Command
}

// Dial dials addr and records the commands sent on the connection.
func (w *Wire) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &wireConn{Conn: c, w: w}, nil
}

// Take returns the commands recorded since the last Take.
func (w *Wire) Take() []Command {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.cmds
	w.cmds = nil
	return c
}

// RoundTrips returns the commands of cmds that the server answers.
func RoundTrips(cmds []Command) []Command {
	var out []Command
	for _, c := range cmds {
		if c.RoundTrip() {
			out = append(out, c)
		}
	}
	return out
}

func (w *Wire) record(c Command) {
	w.mu.Lock()
	w.cmds = append(w.cmds, c)
	w.mu.Unlock()
}

// wireConn is a connection whose writes are parsed into commands.
type wireConn struct {
	net.Conn
	w *Wire
	p Parser
}

func (c *wireConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	for _, cmd := range c.p.Feed(b[:n]) {
		c.w.record(cmd)
	}
	return n, err
}

// Parser splits the bytes a client sends into packets (a 3-byte
// little-endian length, a sequence number, the payload) and returns the
// commands among them: the packets of sequence number 0. It assumes an
// uncompressed connection without TLS. The zero Parser is ready to use.
type Parser struct {
	head    [4]byte
	nhead   int // header bytes read of the current packet
	left    int // payload bytes still to come of the current packet
	command bool
	payload []byte // the current command's payload, at most 1+maxSQL bytes
}

// Feed parses b, the next bytes of the stream, and returns the commands
// whose first packet ended in it.
func (p *Parser) Feed(b []byte) []Command {
	var out []Command
	for len(b) > 0 {
		if p.nhead < 4 {
			n := copy(p.head[p.nhead:], b)
			p.nhead += n
			b = b[n:]
			if p.nhead < 4 {
				break
			}
			p.left = int(p.head[0]) | int(p.head[1])<<8 | int(p.head[2])<<16
			p.command = p.head[3] == 0
			p.payload = p.payload[:0]
		}
		n := min(len(b), p.left)
		if p.command {
			if room := 1 + maxSQL - len(p.payload); room > 0 {
				p.payload = append(p.payload, b[:min(n, room)]...)
			}
		}
		p.left -= n
		b = b[n:]
		if p.left == 0 {
			if p.command && len(p.payload) > 0 {
				c := Command{Code: p.payload[0]}
				if c.Code == ComQuery || c.Code == ComStmtPrepare {
					c.SQL = string(p.payload[1:])
				}
				out = append(out, c)
			}
			p.nhead = 0
		}
	}
	return out
}
