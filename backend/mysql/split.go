package mysql

import "strings"

// splitStatements splits a script into its statements: at each semicolon
// outside quotes ('...', "...", `...`) and comments ("-- " (two dashes and
// a space or a control character) or # to the end of the line, /* ... */).
// Each statement is the script's text between two such semicolons, comments
// included, with ASCII space trimmed; a piece holding only space and
// comments is dropped (the server refuses an empty query). It reads the
// script as MySQL does with its default sql_mode (a backslash escapes
// inside '...' and "..."; a doubled quote is a quote), and never fails: an
// unterminated quote or comment runs to the end.
func splitStatements(script string) []string {
	var out []string
	start, content := 0, false
	flush := func(end int) {
		if s := strings.Trim(script[start:end], asciiSpace); content && s != "" {
			out = append(out, s)
		}
		start, content = end+1, false
	}
	for i := 0; i < len(script); i++ {
		c := script[i]
		switch {
		case c == ';':
			flush(i)
		case c == '\'' || c == '"' || c == '`':
			i = quoteEnd(script, i) - 1
			content = true
		case c == '#' || (c == '-' && strings.HasPrefix(script[i:], "--") && i+2 < len(script) && script[i+2] <= ' '):
			if j := strings.IndexByte(script[i:], '\n'); j >= 0 {
				i += j
			} else {
				i = len(script)
			}
		case c == '/' && strings.HasPrefix(script[i:], "/*"):
			if j := strings.Index(script[i+2:], "*/"); j >= 0 {
				i += 2 + j + 1
			} else {
				i = len(script)
			}
		case !strings.ContainsRune(asciiSpace, rune(c)):
			content = true
		}
	}
	if start < len(script) {
		flush(len(script))
	}
	return out
}

// asciiSpace is the space MySQL skips between tokens.
const asciiSpace = " \t\n\v\f\r"

// quoteEnd returns the index just after the quote that closes the one at
// s[i], or len(s) when none does.
func quoteEnd(s string, i int) int {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch {
		case s[j] == '\\' && q != '`':
			j++ // the escaped byte
		case s[j] == q && j+1 < len(s) && s[j+1] == q:
			j++ // a doubled quote
		case s[j] == q:
			return j + 1
		}
	}
	return len(s)
}
