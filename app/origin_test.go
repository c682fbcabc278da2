package app

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestOriginNotTakenFromHost: a DNS-rebinding page sends its own name as the
// Host header and as the Origin; the API compares the Origin with the origins
// it serves (http.public_origins, else the address it listens on), not with
// the Host header, so the state change is refused. The page's own origin is
// accepted.
func TestOriginNotTakenFromHost(t *testing.T) {
	e := newAPIEnv(t)
	h := e.heldPathology(t, "ORIG1")
	post := func(host, origin string) (int, string) {
		req, err := http.NewRequest("POST", e.base+"/api/holds/"+h+"/release", bytes.NewReader([]byte(`{}`)))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		req.Header.Set("Origin", origin)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+e.tokens["clinician"])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	port := e.base[strings.LastIndexByte(e.base, ':')+1:]
	if st, body := post("rebound.example:"+port, "http://rebound.example:"+port); st != 403 || !strings.Contains(body, "cross_origin") {
		t.Fatalf("rebinding origin: %d %s", st, body)
	}
	if st, body := post(strings.TrimPrefix(e.base, "http://"), e.base); st != 200 {
		t.Fatalf("own origin: %d %s", st, body)
	}
}
