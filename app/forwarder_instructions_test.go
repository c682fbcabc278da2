package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/hl7"
	"github.com/resultgate/resultgate/hl7/mllp"
	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/policy"
	"github.com/resultgate/resultgate/router/bus"
)

// frameRecorder is a portal interface engine on loopback that ACKs everything
// and keeps the bytes of each message by control ID.
type frameRecorder struct {
	mu     sync.Mutex
	frames map[string][]byte
}

func (d *frameRecorder) HandleMessage(_ context.Context, _ mllp.Peer, frame []byte) []byte {
	m, err := hl7.Parse(frame)
	if err != nil {
		return hl7.BuildACKFromBytes(frame, hl7.AR)
	}
	d.mu.Lock()
	d.frames[m.ControlID()] = bytes.Clone(frame)
	d.mu.Unlock()
	return hl7.BuildACK(m, hl7.AA)
}

func (d *frameRecorder) HandleTooLarge(context.Context, mllp.Peer, []byte, int64) []byte { return nil }

func (d *frameRecorder) frame(ctl string) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.frames[ctl]
}

// TestServeForwardsReleaseInstructions: end to end over MLLP with the embedded
// NATS, a malignant pathology result for a Spanish-speaking patient (PID-15
// es) is released at once (no basis to hold it) with notify quiet and the
// Spanish plain-language note; the forwarder delivers the sender's bytes with
// that note in an NTE after the OBR and the instructions in a last ZRG. A
// routine result withdrawn by the lab afterwards reaches the downstream with
// ZRG-7 naming the release it takes back. When node and interop's npm
// packages are installed, node-hl7-client and simple-hl7 read the same
// values from the forwarded bytes.
func TestServeForwardsReleaseInstructions(t *testing.T) {
	ds := &frameRecorder{frames: map[string][]byte{}}
	srv := mllp.NewServer(mllp.ServerConfig{Logger: zerolog.Nop()}, ds)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	cfg, err := config.Parse([]byte("forwarder:\n  enabled: true\n  addr: " + ln.Addr().String() + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	base := testConfig(t, t.TempDir())
	cfg.DataDir, cfg.Durability, cfg.MLLP, cfg.HTTP, cfg.NATS = base.DataDir, base.Durability, base.MLLP, base.HTTP, base.NATS
	a := startApp(t, cfg)

	path := bytes.Replace(msg(pathORU, "FWDI1"), []byte("|19700101|F\r"), []byte("|19700101|F|||||||es\r"), 1)
	lab := msg(labORU, "FWDI2")
	withdrawal := bytes.Replace(bytes.ReplaceAll(lab, []byte("|N|||F\r"), []byte("|N|||W\r")),
		[]byte("|FWDI2|P|"), []byte("|FWDI2-W|P|"), 1)
	sendAll(t, a.MLLPAddr().String(), path, lab)
	testutil.Eventually(t, 20*time.Second, "both results delivered downstream", func() bool {
		return ds.frame("FWDI1") != nil && ds.frame("FWDI2") != nil
	})
	sendAll(t, a.MLLPAddr().String(), withdrawal)
	testutil.Eventually(t, 20*time.Second, "the withdrawal delivered downstream", func() bool { return ds.frame("FWDI2-W") != nil })

	// The pathology result: every byte the sender sent, in place, plus the
	// NTE after the OBR and the ZRG at the end.
	got := ds.frame("FWDI1")
	n, hdr, _ := feed(t, a.js, bus.SubjectPortalHL7Prefix, "FWDI1")
	if n != 1 {
		t.Fatalf("%d feed messages for FWDI1", n)
	}
	note := unescape(hdr[bus.HeaderNote])
	if note != policy.DefaultTemplates[policy.TagMalignancy]["es"] && note != policy.DefaultTemplates[policy.TagNewCancer]["es"] {
		t.Errorf("feed note is not the Spanish template: %q", note)
	}
	if hdr[bus.HeaderNotify] != "quiet" || hdr[bus.HeaderReleasePath] != "immediate" {
		t.Errorf("feed headers: notify %q path %q; want quiet, immediate", hdr[bus.HeaderNotify], hdr[bus.HeaderReleasePath])
	}
	at, err := time.Parse(time.RFC3339Nano, hdr[bus.HeaderReleasedAt])
	if err != nil {
		t.Fatal(err)
	}
	obrEnd := bytes.Index(path, []byte("\rOBX|1|")) + 1
	wantNTE := "NTE|1|O|" + hl7.Escape(note, hl7.DefaultDelimiters) + "|PI^Patient Instructions^HL70364\r"
	wantZRG := "ZRG|quiet|immediate|" + hdr[bus.HeaderReleaseActor] + "|" + hdr[bus.HeaderReleaseRole] + "|" +
		hl7.FormatTime(at.UTC()) + "|" + hdr[bus.HeaderHoldID] + "||" + hl7.Escape(unescape(hdr[bus.HeaderReleaseReason]), hl7.DefaultDelimiters) + "\r"
	if want := string(path[:obrEnd]) + wantNTE + string(path[obrEnd:]) + wantZRG; string(got) != want {
		t.Errorf("forwarded pathology result\n%q\nwant\n%q", got, want)
	}

	// The withdrawal names the release it takes back.
	relZ := zrgOf(t, ds.frame("FWDI2"))
	wZ := zrgOf(t, ds.frame("FWDI2-W"))
	if relZ[1] != "immediate" || wZ[1] != "retraction" || wZ[6] == "" || wZ[6] != relZ[5] || wZ[5] == relZ[5] {
		t.Errorf("release ZRG %q, withdrawal ZRG %q: want ZRG-7 of the withdrawal = ZRG-6 of the release", relZ, wZ)
	}

	t.Run("third-party parsers", func(t *testing.T) {
		_, nodeErr := exec.LookPath("node")
		root := testutil.RepoRoot(t)
		_, modErr := os.Stat(filepath.Join(root, "interop", "node_modules", "node-hl7-client", "package.json"))
		_, modErr2 := os.Stat(filepath.Join(root, "interop", "node_modules", "simple-hl7", "package.json"))
		testutil.Require(t, nodeErr == nil && modErr == nil && modErr2 == nil, "node or interop's npm packages missing (run `cd interop && npm ci`)")
		file := filepath.Join(t.TempDir(), "fwd.hl7")
		if err := os.WriteFile(file, got, 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "node", filepath.Join(root, "interop", "parse.js"), file)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("node parse.js: %v\n%s", err, stderr.String())
		}
		lines := 0
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			var l struct {
				Parser string      `json:"parser"`
				MSH10  string      `json:"msh10"`
				NTE    [][4]string `json:"nte"`
				Z      [][]string  `json:"z"`
				Error  string      `json:"error"`
			}
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil || l.Error != "" {
				t.Fatalf("parse.js: %q (%v)", sc.Text(), err)
			}
			lines++
			// The Spanish templates hold no delimiter or line break: both
			// libraries return the note as is.
			if l.MSH10 != "FWDI1" || len(l.NTE) != 1 || l.NTE[0] != [4]string{"1", "O", note, "PI"} ||
				len(l.Z) != 1 || l.Z[0][0] != "quiet" || l.Z[0][5] != hdr[bus.HeaderHoldID] {
				t.Errorf("%s read MSH-10 %q, NTE %q, ZRG %q", l.Parser, l.MSH10, l.NTE, l.Z)
			}
		}
		if lines != 2 {
			t.Errorf("%d parsers answered, want 2", lines)
		}
	})
}

// zrgOf returns ZRG-1 … ZRG-8 of the last ZRG of frame.
func zrgOf(t *testing.T, frame []byte) []string {
	t.Helper()
	m, err := hl7.Parse(frame)
	if err != nil {
		t.Fatal(err)
	}
	all := m.All("ZRG")
	if len(all) == 0 {
		t.Fatalf("no ZRG in %q", frame)
	}
	z := all[len(all)-1]
	var f []string
	for i := 1; i <= 8; i++ {
		f = append(f, z.Field(i).Value())
	}
	return f
}
