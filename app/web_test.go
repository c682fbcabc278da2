package app

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/resultgate/resultgate/internal/testutil"
)

// The browser tests of the web page are in the e2e module (../e2e).

// The page must not carry identifiers in its URL, and it must be served with a
// strict Content-Security-Policy.
func TestWebHeaders(t *testing.T) {
	e := newAPIEnv(t)
	r := e.do(t, "", "GET", "/", "", nil)
	if r.status != 200 || !strings.Contains(r.raw, "<title>resultgate") {
		t.Fatalf("GET /: %d", r.status)
	}
	resp, err := httpHead(e.base + "/static/app.js")
	if err != nil {
		t.Fatal(err)
	}
	if csp := resp; !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP = %q", csp)
	}
	js, _ := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "web", "static", "app.js"))
	if strings.Contains(string(js), "innerHTML") || strings.Contains(string(js), "location.hash =") || strings.Contains(string(js), "pushState") {
		t.Error("app.js writes HTML from data or puts state in the URL")
	}
}

func httpHead(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	return resp.Header.Get("Content-Security-Policy"), nil
}
