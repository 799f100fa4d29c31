package sessions

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// CookieConfig says how the session cookie is written. Its zero value is all
// defaults: a persistent cookie named "__Host-session" with Path=/, Secure,
// HttpOnly and SameSite=Lax, and no Domain (host-only).
//
// The cookie holds only the session token; the session's data never leaves
// the server.
type CookieConfig struct {
	// Name is the cookie's name. It must be a valid cookie name (an RFC
	// 6265 token). A name starting with "__Host-" obliges the browser to
	// keep the cookie to this exact host over HTTPS and to refuse a cookie of
	// that name set by any other host (a sibling subdomain cannot plant
	// one: no cookie tossing): New then requires Secure, Path "/" and no
	// Domain. A name starting with "__Secure-" requires Secure.
	//
	// Default: the strongest prefix the other fields allow:
	// "__Host-session" with the defaults (Secure, Path "/", no Domain);
	// "__Secure-session" with a Domain or another Path; plain "session"
	// with Insecure (local development over plain HTTP).
	//
	// Upgrading from a version whose default was "session": with a
	// defaulted prefixed Name, a request that brings no live session under
	// Name is also looked up under "session", but only for sessions created
	// before the Manager was made; such a session is then written under the
	// new name and the old cookie deleted. So visitors are not logged out by
	// the upgrade, the transition ends by itself within AbsoluteTimeout, and
	// a "session" cookie planted after the upgrade is never adopted.
	//
	// Duplicates: browsers send every cookie whose domain and path match, so
	// a request may bring several cookies of one name (one planted from a
	// sibling subdomain, say: only names without the __Host- prefix allow
	// that). They are tried in the order the request lists them (browsers
	// put longer paths first, then older cookies first), Name before the
	// old default name: malformed, unknown and ended tokens are skipped, so
	// they never shadow a live session; the first live session is served;
	// when a second, different live session arrives too, it is reported to
	// Config.OnSuspicious (the first is still served).
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

	// legacy is the old default name, also read during the upgrade
	// transition (see Name); "" for none.
	legacy string
}

// legacyName is the default cookie name before the __Host- prefix.
const legacyName = "session"

// withDefaults fills in the defaults and checks the result.
func (c CookieConfig) withDefaults() (CookieConfig, error) {
	if c.Path == "" {
		c.Path = "/"
	}
	if c.Name == "" {
		switch {
		case c.Insecure:
			c.Name = legacyName
		case c.Domain == "" && c.Path == "/":
			c.Name, c.legacy = "__Host-"+legacyName, legacyName
		default:
			c.Name, c.legacy = "__Secure-"+legacyName, legacyName
		}
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

// maxCandidates bounds how many session cookies of one request are looked
// up in the store.
const maxCandidates = 4

// candidate is a well-formed token a request brought.
type candidate struct {
	token  string
	legacy bool // under the old default name (see CookieConfig.Name)
}

// candidates returns the distinct well-formed tokens among the request's
// cookies named c.Name, then c.legacy, in the order the request lists them,
// at most maxCandidates, appended to out. Cookies of those names with
// malformed values (tampered, truncated, oversized, non-ASCII) are skipped
// without a store access.
func (c *CookieConfig) candidates(r *http.Request, out []candidate) []candidate {
	n := len(out)
	for _, name := range [2]string{c.Name, c.legacy} {
		if name == "" {
			continue
		}
		for _, line := range r.Header["Cookie"] {
			for len(line) > 0 && len(out)-n < maxCandidates {
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
				if validToken(v) && !slices.ContainsFunc(out[n:], func(c candidate) bool { return c.token == v }) {
					out = append(out, candidate{token: v, legacy: name == c.legacy})
				}
			}
		}
	}
	return out
}

// hasLegacy reports whether the request brings a cookie under the old
// default name.
func (c *CookieConfig) hasLegacy(r *http.Request) bool {
	if c.legacy == "" {
		return false
	}
	for _, line := range r.Header["Cookie"] {
		for _, part := range strings.Split(line, ";") {
			if k, _, ok := strings.Cut(strings.TrimSpace(part), "="); ok && k == c.legacy {
				return true
			}
		}
	}
	return false
}

// writeCookie sets the session cookie on w, replacing any session cookie set
// earlier in the same response, and marks the response as not to be stored by
// shared caches (Vary: Cookie, and Cache-Control when the handler set none). A zero expires writes a cookie that deletes
// the session cookie in the browser.
func (c *CookieConfig) writeCookie(w http.ResponseWriter, token string, expires, now time.Time) {
	c.writeNamed(w, c.Name, token, expires, now, !c.SessionOnly)
}

// deleteLegacy sets a cookie on w that deletes the cookie of the old default
// name in the browser.
func (c *CookieConfig) deleteLegacy(w http.ResponseWriter, now time.Time) {
	if w != nil && c.legacy != "" {
		c.writeNamed(w, c.legacy, "", time.Time{}, now, false)
	}
}

// writeNamed is writeCookie for the cookie named name, persistent (with
// Expires and Max-Age) or not.
func (c *CookieConfig) writeNamed(w http.ResponseWriter, name, token string, expires, now time.Time, persistent bool) {
	var b strings.Builder
	b.Grow(len(name) + len(token) + 128)
	b.WriteString(name)
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
	case persistent:
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
	prefix := name + "="
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
