// Package browsertest tests the demo (examples/demo) in a real browser:
// Debian's chromium, headless, driven with github.com/chromedp/chromedp.
// It is a Go module of its own, so that neither the library nor the demo
// requires chromedp.
//
//	go test ./examples/demo/browsertest/...
//
// The tests build the demo, run it on a free loopback port and stop it at
// the end. They find the browser at $SESSIONS_CHROMIUM, else chromium,
// chromium-browser, google-chrome or /usr/bin/chromium; without one they
// are skipped, unless SESSIONS_REQUIRE_BROWSER=1 (set by .ci/run): then
// they fail. A failing test writes a screenshot of each page it had open
// to $BROWSERTEST_ARTIFACTS, or to a new directory under the system's
// temporary directory, and logs its path. With DEMO_SCREENSHOTS=DIR they
// also write the screenshots of the main screens that the README shows
// (examples/demo/screenshots).
package browsertest
