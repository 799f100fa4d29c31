package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sessionx/sessions"
)

// readme returns the repository's README.md.
func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Skipf("no README beside the demo: %v", err)
	}
	return string(b)
}

// codeBlocks returns the README's fenced blocks of language lang.
func codeBlocks(text, lang string) []string {
	re := regexp.MustCompile("(?ms)^ *```" + lang + "\n(.*?)^ *```")
	var out []string
	for _, m := range re.FindAllStringSubmatch(text, -1) {
		out = append(out, m[1])
	}
	return out
}

// TestREADMEQuickStart builds the README's first Go block, the quick
// start, as a program of its own against this repository's library, runs
// it and checks what the README says of it: each request to / adds a
// book with Update, ?name= is kept with a plain write, /favicon.ico is not
// counted, and the cookie is the Secure __Host-session.
func TestREADMEQuickStart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program: not under -short")
	}
	blocks := codeBlocks(readme(t), "go")
	if len(blocks) == 0 || !strings.HasPrefix(blocks[0], "package main\n") {
		t.Fatal("the README's first Go block is not a program (package main)")
	}
	const addr = "localhost:8080"
	if !strings.Contains(blocks[0], `"`+addr+`"`) {
		t.Fatalf("the quick start does not listen on %s", addr)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	free := ln.Addr().String()
	ln.Close()
	src := strings.Replace(blocks[0], `"`+addr+`"`, `"`+free+`"`, 1)
	gomod := "module example\n\ngo 1.26.0\n\nrequire github.com/sessionx/sessions v0.0.0\n\nreplace github.com/sessionx/sessions => " + root + "\n"
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"main.go": src, "go.mod": gomod, "go.sum": string(sum)} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "quickstart")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build the quick start: %v\n%s", err, out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		if t.Failed() {
			t.Logf("quick start stderr:\n%s", stderr.String())
		}
	})
	base := "http://" + free
	var cookie string
	get := func(path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		// A browser on localhost keeps the Secure cookie; so does this client.
		for _, c := range resp.Cookies() {
			if c.Name != "__Host-session" || !c.Secure || !c.HttpOnly || c.Path != "/" {
				t.Errorf("cookie %s: Secure %v, HttpOnly %v, Path %q; want __Host-session, Secure, HttpOnly, /", c.Name, c.Secure, c.HttpOnly, c.Path)
			}
			cookie = c.Name + "=" + c.Value
		}
		return resp.StatusCode, string(b)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", free); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the quick start did not listen within 10 s")
		}
	}
	for i, st := range []struct {
		path, want string
		code       int
	}{
		{"/", ": 1 items\n", 200},
		{"/favicon.ico", "404 page not found\n", 404},
		{"/?name=ann", "ann: 2 items\n", 200},
		{"/", "ann: 3 items\n", 200},
	} {
		if code, body := get(st.path); code != st.code || body != st.want {
			t.Fatalf("request %d, GET %s: %d %q, want %d %q", i+1, st.path, code, body, st.code, st.want)
		}
	}
}

// TestREADMECurlLines runs the README's shell blocks that call the demo's
// API with curl against a demo of this test, and checks every "# want"
// comment that follows a command against what the commands printed.
func TestREADMECurlLines(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("no curl")
	}
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	mgr, err := sessions.New[Data](config(true, false))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(newApp(mgr))
	t.Cleanup(func() { srv.Close(); mgr.Close() })

	found := 0
	for _, block := range codeBlocks(readme(t), "sh") {
		if !strings.Contains(block, "curl") || !strings.Contains(block, "127.0.0.1:8080/api/") {
			continue
		}
		found++
		script := strings.ReplaceAll(block, "http://127.0.0.1:8080", srv.URL)
		out, err := exec.Command("sh", "-ec", script).CombinedOutput()
		if err != nil {
			t.Fatalf("block %d: %v\n%s\n--- output:\n%s", found, err, block, out)
		}
		sc := bufio.NewScanner(strings.NewReader(block))
		for sc.Scan() {
			want, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "# ")
			if ok && !strings.Contains(string(out), want) {
				t.Errorf("block %d: the output has no %q\n%s\n--- output:\n%s", found, want, block, out)
			}
		}
	}
	if found == 0 {
		t.Fatal("the README has no curl lines against the demo's API")
	}
}
