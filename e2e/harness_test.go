package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/holdview"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/app"
	"github.com/resultgate/resultgate/auth"
	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/hl7/mllp"
	"github.com/resultgate/resultgate/internal/loadgen"
	"github.com/resultgate/resultgate/internal/testutil"
)

// The harness below starts resultgate through its exported API only. It is
// the browser tests' share of the helpers app's own tests use (api_test.go,
// pipeline_test.go, e2e_bench_test.go in package app), which a module of its
// own cannot reach.

// chromiumPath finds Debian's Chromium (installed by .ci/run).
func chromiumPath() string {
	for _, p := range []string{os.Getenv("RESULTGATE_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := exec.LookPath(p); err == nil {
			return p
		}
	}
	return ""
}

// browser starts headless Chromium with the flags this closed network needs
// (no background networking, no component updates) and a fresh profile.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath()
	testutil.Require(t, path != "", "Chromium (apt-get install chromium)")
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(390, 844), // a phone-sized viewport: the layout must hold
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	ctx, cancel3 := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancel3)
	return ctx
}

// testConfig is the default configuration on loopback ports in dataDir.
func testConfig(t *testing.T, dataDir string) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = dataDir
	cfg.Durability = config.DurabilityOS
	cfg.MLLP.Addr = "127.0.0.1:0"
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.NATS.Listen = "127.0.0.1:-1"
	return cfg
}

// kentuckyConfig is testConfig with the Kentucky statute preset (KRS 333.152:
// pathology likely to show malignancy is held 72 h after finalisation).
func kentuckyConfig(t *testing.T, dataDir string) config.Config {
	t.Helper()
	return kentuckyConfigWith(t, dataDir, "")
}

// kentuckyConfigWith is kentuckyConfig with more top-level YAML sections.
func kentuckyConfigWith(t *testing.T, dataDir, extra string) config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(`
policy:
  time_zone: America/New_York
  jurisdiction: US-KY
  jurisdictions:
    US-KY:
      statute: US-KY-KRS-333.152
` + extra))
	if err != nil {
		t.Fatal(err)
	}
	base := testConfig(t, dataDir)
	cfg.DataDir, cfg.Durability, cfg.MLLP, cfg.HTTP, cfg.NATS = base.DataDir, base.Durability, base.MLLP, base.HTTP, base.NATS
	return cfg
}

// apiEnv is a running resultgate with the Kentucky preset and one token per role.
type apiEnv struct {
	app    *app.App
	base   string
	tokens map[string]string
}

func newAPIEnv(t *testing.T) *apiEnv {
	t.Helper()
	return newAPIEnvConfig(t, kentuckyConfig(t, t.TempDir()))
}

// newAPIEnvConfig is newAPIEnv with cfg (its data directory holds the tokens).
func newAPIEnvConfig(t *testing.T, cfg config.Config) *apiEnv {
	t.Helper()
	tokFile := filepath.Join(cfg.DataDir, "tokens.yaml")
	toks := map[string]string{}
	for _, u := range []struct {
		key, name string
		role      auth.Role
		provider  string
	}{
		{"clinician", "Dr Delta", auth.RoleClinician, "D001"},
		{"other", "Dr Echo", auth.RoleClinician, "D002"},
		{"oncall", "Dr Night", auth.RoleOnCall, ""},
		{"compliance", "Compliance Office", auth.RoleCompliance, ""},
		{"admin", "Integration Team", auth.RoleAdmin, ""},
	} {
		tok, err := auth.NewToken(tokFile, u.name, u.role, u.provider, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		toks[u.key] = tok
	}
	return startAPIEnv(t, cfg, toks)
}

// startAPIEnv starts resultgate with cfg; toks are the bearer tokens by user key.
func startAPIEnv(t *testing.T, cfg config.Config, toks map[string]string) *apiEnv {
	t.Helper()
	a := app.New(cfg, zerolog.Nop())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		a.Stop(ctx)
	})
	return &apiEnv{app: a, base: "http://" + a.HTTPAddr().String(), tokens: toks}
}

type apiResp struct {
	status int
	body   map[string]any
	raw    string
}

func (e *apiEnv) do(t *testing.T, who, method, path, ctype string, body []byte, hdr ...string) apiResp {
	t.Helper()
	req, err := http.NewRequest(method, e.base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if tok, ok := e.tokens[who]; ok {
		req.Header.Set("Authorization", "Bearer "+tok)
	} else if who != "" {
		req.Header.Set("Authorization", "Bearer "+who)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := apiResp{status: resp.StatusCode, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

func (e *apiEnv) heldPathology(t *testing.T, id string) string {
	t.Helper()
	sendAll(t, e.app.MLLPAddr().String(), msg(pathORU, id))
	var holdID string
	testutil.Eventually(t, 15*time.Second, "hold for "+id, func() bool {
		hs, _ := e.app.Service().ListHolds(context.Background(), holdview.Filter{Provider: "D001"})
		for _, h := range hs {
			if h.Inbound.ControlID == id {
				holdID = h.ID
				return true
			}
		}
		return false
	})
	return holdID
}

// pathORU is a synthetic surgical pathology report with a malignant
// diagnosis; OBR-22 is set so the state-law clock is defined.
const pathORU = "MSH|^~\\&|APLIS|SYNPATH|PORTAL|GENHOSP|20261120090000-0500||ORU^R01^ORU_R01|%s|P|2.5.1\r" +
	"PID|1||MRN-E2E-%s^^^GENHOSP^MR||TESTPATIENT^E2E||19700101|F\r" +
	"ORC|RE|PL-%s|FL-%s||CM||||20261120080000|||D001^DOCTOR^DELTA\r" +
	"OBR|1|PL-%s|FL-%s|60567-5^Comprehensive pathology report panel^LN|||20261119100000|||||||||D001^DOCTOR^DELTA||||||20261120085500||SP|F\r" +
	"OBX|1|TX|22637-3^Pathology report final diagnosis^LN||Left breast, core biopsy: invasive ductal carcinoma, grade 2.||||||F\r" +
	"OBX|2|TX|22634-0^Pathology report gross description^LN||Two cores of tan tissue.||||||F\r"

// obr22At is the results-reported time (OBR-22) of every message msg builds:
// an hour before the tests started, so a 72-hour statute hold is still open
// whatever the date. The template carries a fixed date that msg replaces.
var obr22At = time.Now().Add(-time.Hour).Truncate(time.Minute)

// obr22Text is obr22At as the messages write it: without an offset, in the
// policy's zone (America/New_York) as the Kentucky preset configures it.
var obr22Text = func() string {
	loc, err := time.LoadLocation("America/New_York")
	if err != nil {
		panic(err)
	}
	return obr22At.In(loc).Format("20060102150405")
}()

// templateOBR22 is the OBR-22 written in the template.
const templateOBR22 = "20261120085500"

func msg(tmpl, id string) []byte {
	return []byte(strings.ReplaceAll(fmt.Sprintf(tmpl, id, id, id, id, id, id), templateOBR22, obr22Text))
}

// feed returns how many messages with control ID id are on the portal
// subject prefix ("portal.hl7." or "portal.fhir.") and the last one's headers
// and data.
func feed(t *testing.T, js jetstream.JetStream, prefix, id string) (int, map[string]string, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, bus.StreamPortal)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	hdr := map[string]string{}
	var data []byte
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		if strings.HasPrefix(m.Subject, prefix) && m.Header.Get(bus.HeaderControlID) == id {
			n++
			data = m.Data
			for k := range m.Header {
				hdr[k] = m.Header.Get(k)
			}
		}
	}
	return n, hdr, data
}

// unescape decodes a percent-encoded feed header (notes may hold any text).
func unescape(s string) string {
	u, err := url.PathUnescape(s)
	if err != nil {
		return "undecodable: " + s
	}
	return u
}

// sendAll sends msgs over one MLLP connection and requires AA for each.
func sendAll(t *testing.T, addr string, msgs ...[]byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := mllp.Dial(ctx, mllp.ClientConfig{Addr: addr, AckTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, m := range msgs {
		ack, err := cl.Send(ctx, m)
		if err != nil || loadgen.AckCode(ack) != "AA" {
			t.Fatalf("send: %q %v", ack, err)
		}
	}
}
