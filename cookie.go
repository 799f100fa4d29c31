package sessions

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// CookieConfig says how the session cookie is written. Its zero value is all
// defaults: a persistent cookie named "session" with Path=/, Secure, HttpOnly
// and SameSite=Lax, and no Domain (host-only).
//
// The cookie holds only the session token; the session's data never leaves
// the server.
type CookieConfig struct {
	// Name is the cookie's name. Default "session". It must be a valid
	// cookie name (an RFC 6265 token). A name starting with "__Host-" obliges
	// the browser to keep the cookie to this exact host over HTTPS: New then
	// requires Secure, Path "/" and no Domain. A name starting with
	// "__Secure-" requires Secure.
	Name string

	// Domain is the cookie's Domain attribute. Default "": the cookie is sent
	// only to the host that set it, which is safest.
	Domain string

	// Path is the cookie's Path attribute. Default "/".
	Path string

	// Insecure drops the Secure attribute, so that browsers also send the
	// cookie over plain HTTP, where anyone on the path can read it. Default
	// false: the cookie is Secure. Set it only for local development over
	// plain HTTP; most browsers accept Secure cookies from http://localhost.
	Insecure bool

	// NoHTTPOnly drops the HttpOnly attribute, so that scripts in the page
	// can read the token (and so can any injected script). Default false:
	// the cookie is HttpOnly.
	NoHTTPOnly bool

	// SameSite is the cookie's SameSite attribute. Default (zero)
	// http.SameSiteLaxMode. http.SameSiteNoneMode requires Secure.
	// http.SameSiteDefaultMode writes no SameSite attribute.
	SameSite http.SameSite

	// SessionOnly makes the cookie a browser-session cookie, without
	// Expires and Max-Age: the browser forgets it when it closes. Default
	// false: the cookie persists and expires with the session's idle
	// deadline, refreshed whenever the store's deadline is.
	SessionOnly bool
}

// withDefaults fills in the defaults and checks the result.
func (c CookieConfig) withDefaults() (CookieConfig, error) {
	if c.Name == "" {
		c.Name = "session"
	}
	if c.Path == "" {
		c.Path = "/"
	}
	if c.SameSite == 0 {
		c.SameSite = http.SameSiteLaxMode
	}
	if !isCookieName(c.Name) {
		return c, fmt.Errorf("%w: cookie name %q is not a valid cookie name", ErrInvalidConfig, c.Name)
	}
	if !isCookieAttr(c.Path) || c.Path[0] != '/' {
		return c, fmt.Errorf("%w: cookie path %q must start with / and hold no ';' or control characters", ErrInvalidConfig, c.Path)
	}
	if c.Domain != "" && (!isCookieAttr(c.Domain) || strings.ContainsAny(c.Domain, " ,")) {
		return c, fmt.Errorf("%w: cookie domain %q is not a valid domain", ErrInvalidConfig, c.Domain)
	}
	if c.SameSite < http.SameSiteDefaultMode || c.SameSite > http.SameSiteNoneMode {
		return c, fmt.Errorf("%w: cookie SameSite %d is not one of net/http's SameSite modes", ErrInvalidConfig, c.SameSite)
	}
	if c.SameSite == http.SameSiteNoneMode && c.Insecure {
		return c, fmt.Errorf("%w: SameSite=None requires a Secure cookie (Insecure is set)", ErrInvalidConfig)
	}
	if strings.HasPrefix(c.Name, "__Secure-") && c.Insecure {
		return c, fmt.Errorf("%w: a __Secure- cookie must be Secure (Insecure is set)", ErrInvalidConfig)
	}
	if strings.HasPrefix(c.Name, "__Host-") {
		switch {
		case c.Insecure:
			return c, fmt.Errorf("%w: a __Host- cookie must be Secure (Insecure is set)", ErrInvalidConfig)
		case c.Path != "/":
			return c, fmt.Errorf("%w: a __Host- cookie must have Path=/ (got %q)", ErrInvalidConfig, c.Path)
		case c.Domain != "":
			return c, fmt.Errorf("%w: a __Host- cookie must not have a Domain (got %q)", ErrInvalidConfig, c.Domain)
		}
	}
	return c, nil
}

// isCookieName reports whether s is an RFC 6265 token.
func isCookieName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return true
}

// isCookieAttr reports whether s can stand as an attribute value.
func isCookieAttr(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c >= 0x7f || c == ';' {
			return false
		}
	}
	return true
}

// readToken returns the first well-formed token among the request's cookies
// named name. Cookies of that name with malformed values (tampered,
// truncated, oversized, non-ASCII) are skipped without a store access.
func readToken(r *http.Request, name string) (string, bool) {
	for _, line := range r.Header["Cookie"] {
		for len(line) > 0 {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = strings.TrimLeft(part, " \t")
			k, v, ok := strings.Cut(part, "=")
			if !ok || k != name {
				continue
			}
			v = strings.TrimRight(v, " \t")
			if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			if validToken(v) {
				return v, true
			}
		}
	}
	return "", false
}

// writeCookie sets the session cookie on w, replacing any session cookie set
// earlier in the same response, and marks the response as not to be stored by
// shared caches (Vary: Cookie, and Cache-Control when the handler set none). A zero expires writes a cookie that deletes
// the session cookie in the browser.
func (c *CookieConfig) writeCookie(w http.ResponseWriter, token string, expires, now time.Time) {
	var b strings.Builder
	b.Grow(len(c.Name) + len(token) + 128)
	b.WriteString(c.Name)
	b.WriteByte('=')
	b.WriteString(token)
	b.WriteString("; Path=")
	b.WriteString(c.Path)
	if c.Domain != "" {
		b.WriteString("; Domain=")
		b.WriteString(c.Domain)
	}
	switch {
	case expires.IsZero():
		b.WriteString("; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0")
	case !c.SessionOnly:
		b.WriteString("; Expires=")
		b.WriteString(expires.UTC().Format(http.TimeFormat))
		b.WriteString("; Max-Age=")
		maxAge := int64(expires.Sub(now) / time.Second)
		if maxAge < 1 {
			maxAge = 1
		}
		b.WriteString(strconv.FormatInt(maxAge, 10))
	}
	if !c.NoHTTPOnly {
		b.WriteString("; HttpOnly")
	}
	if !c.Insecure {
		b.WriteString("; Secure")
	}
	switch c.SameSite {
	case http.SameSiteLaxMode:
		b.WriteString("; SameSite=Lax")
	case http.SameSiteStrictMode:
		b.WriteString("; SameSite=Strict")
	case http.SameSiteNoneMode:
		b.WriteString("; SameSite=None")
	}

	h := w.Header()
	prefix := c.Name + "="
	old := h["Set-Cookie"]
	kept := old[:0]
	for _, v := range old {
		if !strings.HasPrefix(v, prefix) {
			kept = append(kept, v)
		}
	}
	h["Set-Cookie"] = append(kept, b.String())
	// A shared cache must never hand one visitor's token to another.
	if !headerHas(h, "Vary", "Cookie") {
		h.Add("Vary", "Cookie")
	}
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", `no-cache="Set-Cookie"`)
	}
}

// headerHas reports whether the comma-separated header key lists value.
func headerHas(h http.Header, key, value string) bool {
	for _, line := range h[key] {
		for _, v := range strings.Split(line, ",") {
			if strings.EqualFold(strings.TrimSpace(v), value) {
				return true
			}
		}
	}
	return false
}

// setCookie writes s's cookie to w, expiring with its idle deadline. A
// session reached through a rotated token's forward record gets no cookie:
// its request carries the old token, and the new one went out with the
// response that rotated it.
func (m *Manager[T]) setCookie(w http.ResponseWriter, s *Session[T], now time.Time) {
	if w != nil && !s.forwarded {
		m.cfg.Cookie.writeCookie(w, s.token, s.expires, now)
	}
}
