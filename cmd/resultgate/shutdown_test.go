package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/resultgate/resultgate/app"
	"github.com/resultgate/resultgate/auth"
	"github.com/resultgate/resultgate/internal/testutil"
)

// bigORU returns a synthetic pathology ORU^R01 just under the 16 MiB frame
// bound (a long narrative in OBX-5) with control ID ctrl.
func bigORU(ctrl string) []byte {
	text := strings.Repeat("microscopic description ", (16<<20-4096)/24)
	return []byte(strings.Join([]string{
		"MSH|^~\\&|LIS|HOSP|PORTAL|HOSP|20260302080000||ORU^R01^ORU_R01|" + ctrl + "|P|2.5.1",
		"PID|1||MRN-" + ctrl + "^^^HOSP^MR||Doe^Jane||19800101|F",
		"OBR|1|PL-" + ctrl + "|FL-" + ctrl + "|88305^Surgical pathology^LN|||20260301120000|||||||||DRSMITH^Smith^Ann||||||20260302080000|||F",
		"OBX|1|TX|22634-0^Pathology report^LN||" + text + "||||||F",
	}, "\r") + "\r")
}

// reportResults asks GET /api/report with token and returns its status and
// the number of results it counts (-1 when it has none).
func reportResults(ctx context.Context, base, token string) (int, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/report", nil)
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	var body struct {
		Totals struct {
			Results *int `json:"results"`
		} `json:"totals"`
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, 0, err
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &body) != nil || body.Totals.Results == nil {
		return resp.StatusCode, -1, nil
	}
	return resp.StatusCode, *body.Totals.Results, nil
}

// stallPOST sends the headers of an authenticated POST /fhir/Consent with a
// body announced but never sent, and returns once the server's handler has
// started reading that body (its "100 Continue" says so): the handler is now
// stuck until the server's read timeout or its shutdown.
func stallPOST(c net.Conn, host, token string) error {
	if _, err := fmt.Fprintf(c, "POST /fhir/Consent HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/fhir+json\r\nContent-Length: 4096\r\nExpect: 100-continue\r\n\r\n", host, token); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("waiting for 100 Continue: %w", err)
	}
	if !strings.HasPrefix(line, "HTTP/1.1 100") {
		return fmt.Errorf("POST answered %q, want 100 Continue", line)
	}
	_ = c.SetReadDeadline(time.Time{})
	_, err = c.Write([]byte(`{"resourceType":"Consent",`))
	return err
}

// TestServeSIGTERMWithStuckWork stops the daemon with SIGTERM while an MLLP
// sender has stalled in the middle of a frame, an HTTP client has stalled in
// the middle of an authenticated POST body (both past the point where the
// server waits for them, and both with read timeouts of 30 s), and a
// compliance report over three 16 MiB messages is asked for: the process ends
// within its 25 s stop bound, having logged its orderly stop, and the report's
// client gets its answer (200 when it finished within the stop's grace, 503
// when it was cancelled).
func TestServeSIGTERMWithStuckWork(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary with 48 MiB of messages and a 25 s shutdown")
	}
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens.yaml")
	comp, err := auth.NewToken(tokens, "Compliance Office", auth.RoleCompliance, "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	clin, err := auth.NewToken(tokens, "Dr Delta", auth.RoleClinician, "D001", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p := startServe(t, dir, "os")
	base := "http://" + p.started.HTTP
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// Three results of 16 MiB, stored and decided: the report reads them.
	for i := range 3 {
		c, err := dialRaw(ctx, p.started.MLLP)
		if err != nil {
			t.Fatal(err)
		}
		ack, err := c.send(bigORU(fmt.Sprintf("BIG%d", i)), 60*time.Second)
		_ = c.Close()
		if err != nil || !strings.Contains(string(ack), "|AA|") {
			t.Fatalf("sending 16 MiB message %d: %v %q", i, err, ack)
		}
	}
	testutil.Eventually(t, 60*time.Second, "the report counts the three results", func() bool {
		status, n, err := reportResults(ctx, base, comp)
		return err == nil && status == http.StatusOK && n == 3
	})

	// An MLLP sender stalls mid-frame: the server waits for the rest.
	var d net.Dialer
	stuckMLLP, err := d.DialContext(ctx, "tcp", p.started.MLLP)
	if err != nil {
		t.Fatal(err)
	}
	defer stuckMLLP.Close()
	if _, err := stuckMLLP.Write([]byte("\x0bMSH|^~\\&|LIS|HOSP|PORTAL|HOSP|20260302080000||ORU^R01|STUCK1|P|2.5.1\rPID|1||")); err != nil {
		t.Fatal(err)
	}
	// An HTTP client stalls in the body of an authenticated POST: the
	// handler waits for the rest.
	stuckHTTP, err := d.DialContext(ctx, "tcp", p.started.HTTP)
	if err != nil {
		t.Fatal(err)
	}
	defer stuckHTTP.Close()
	if err := stallPOST(stuckHTTP, p.started.HTTP, clin); err != nil {
		t.Fatal(err)
	}
	// One more full exchange first: the server is serving, with both
	// stalled connections open.
	if status, _, err := reportResults(ctx, base, comp); err != nil || status != http.StatusOK {
		t.Fatalf("report before the stop: %d %v", status, err)
	}

	// A report in flight when the signal comes: on a connection the server
	// has accepted and served once, then the report; the signal is sent once
	// the server counts the report among the requests it is serving (the
	// stalled POST, the report, and the scrape that reads the gauge). Before
	// that, a busy machine could take the signal before the server had read
	// the request, and the connection, idle to the server, was closed
	// unanswered (as HTTP allows; it is not a request in flight).
	type answer struct {
		status int
		err    error
	}
	rc, err := d.DialContext(ctx, "tcp", p.started.HTTP)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	rbr := bufio.NewReader(rc)
	get := func(path string) error {
		_, err := fmt.Fprintf(rc, "GET %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n", path, p.started.HTTP, comp)
		return err
	}
	if err := get("/api/me"); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.ReadResponse(rbr, nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/me: %v %v", resp, err)
	} else {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if err := get("/api/report"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, "the server serves the report", func() bool {
		return httpInFlight(ctx, base) >= 3
	})
	reportDone := make(chan answer, 1)
	go func() {
		resp, err := http.ReadResponse(rbr, nil)
		if err != nil {
			reportDone <- answer{0, err}
			return
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		reportDone <- answer{resp.StatusCode, err}
	}()
	// The request is on its way; the signal follows at once.
	start := time.Now()
	code := p.signal(syscall.SIGTERM, app.DefaultStopTimeout+15*time.Second)
	took := time.Since(start)
	t.Logf("serve exited with code %d %s after SIGTERM", code, took.Round(time.Millisecond))
	// The bound is the daemon's own (it used to overrun it by the time the
	// embedded server takes to stop: 25.7 s here).
	if limit := app.DefaultStopTimeout; took > limit {
		t.Errorf("serve took %s to exit after SIGTERM, want within %s\n%s", took, limit, p.log())
	}
	if p.logLine(`"resultgate stopped"`) == "" {
		t.Errorf("no orderly stop logged\n%s", p.log())
	}
	if code != 0 && code != 1 {
		t.Errorf("exit code %d, want 0 (or 1 when the stop had to cut stuck work short)", code)
	}
	select {
	case a := <-reportDone:
		// It finished within the stop's grace (200), or was cancelled and
		// said so (503): an answer either way.
		t.Logf("the report in flight got status %d, error %v", a.status, a.err)
		if a.err != nil || (a.status != http.StatusOK && a.status != http.StatusServiceUnavailable) {
			t.Errorf("report in flight: status %d, error %v; want 200 or 503", a.status, a.err)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("the report's client still waits 5s after the process exited")
	}
	// The stalled peers see their connections closed.
	for name, c := range map[string]net.Conn{"MLLP": stuckMLLP, "HTTP": stuckHTTP} {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := bufio.NewReader(c).ReadString('\n'); err == nil {
			continue // an error answer, then the close
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Errorf("stalled %s connection still open after the process exited", name)
		}
	}
}

// httpInFlight reads resultgate_http_requests_in_flight from serve's
// metrics (this scrape included); -1 when it cannot.
func httpInFlight(ctx context.Context, base string) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return -1
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "resultgate_http_requests_in_flight "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return -1
			}
			return int(n)
		}
	}
	return -1
}
