package main

import (
	"context"
	"debug/elf"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/resultgate/resultgate/hl7/mllp"
	"github.com/resultgate/resultgate/internal/loadgen"
	"github.com/resultgate/resultgate/internal/testutil"
)

// TestDockerfile checks what can be checked of the repository's Dockerfile without
// a container engine, so that it cannot rot unnoticed: the shape of the image
// (multi-stage, non-root, volume, ports, entrypoint and command agreeing with one
// another and with serve's flags), that the builder stage's own `go build` command
// produces a static binary from this tree, and that this binary, run with the
// image's CMD (listeners moved to loopback ephemeral ports, the volume to a temp
// dir), starts, acknowledges an ORU^R01 and stops cleanly on SIGTERM, as
// `docker stop` would stop it.
//
// Not checked: that the base images exist and pull, that the distroless image has
// UID 65532, and anything about the image's file system beyond what the
// Dockerfile states.
func TestDockerfile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds resultgate with the Dockerfile's go build command and runs it; skipped with -short")
	}
	root := testutil.RepoRoot(t)
	df := parseDockerfile(t, filepath.Join(root, "Dockerfile"))

	// 1. The image's shape.
	if len(df.stages) < 2 {
		t.Fatalf("Dockerfile has %d stage(s), want a multi-stage build (builder + runtime)", len(df.stages))
	}
	final := df.stages[len(df.stages)-1]

	user := final.last("USER")
	if user == nil {
		t.Errorf("final stage (line %d) sets no USER: the container would run as root", final.line)
	} else if u, _, _ := strings.Cut(user.args, ":"); u == "" || u == "root" || u == "0" {
		t.Errorf("line %d: USER %s runs as root", user.line, user.args)
	} else if n, err := strconv.Atoi(u); err == nil && n <= 0 {
		t.Errorf("line %d: USER %s is not a non-root UID", user.line, user.args)
	}

	var volumes []string
	for _, in := range final.all("VOLUME") {
		volumes = append(volumes, in.list(t)...)
	}
	if len(volumes) != 1 {
		t.Fatalf("final stage declares VOLUME %q, want exactly one (the data directory)", volumes)
	}
	volume := volumes[0]

	exposed := map[string]bool{}
	for _, in := range final.all("EXPOSE") {
		for _, p := range strings.Fields(in.args) {
			exposed[strings.TrimSuffix(p, "/tcp")] = true
		}
	}
	for _, p := range []string{"2575", "8080", "4222"} {
		if !exposed[p] {
			t.Errorf("final stage does not EXPOSE %s (have %v)", p, exposed)
		}
	}

	ep := final.last("ENTRYPOINT")
	cmdIn := final.last("CMD")
	if ep == nil || cmdIn == nil {
		t.Fatalf("final stage needs ENTRYPOINT and CMD (have ENTRYPOINT %v, CMD %v)", ep != nil, cmdIn != nil)
	}
	entry := ep.execForm(t)
	if len(entry) != 1 || path.Base(entry[0]) != "resultgate" {
		t.Errorf("line %d: ENTRYPOINT %q, want the resultgate binary alone in exec form", ep.line, entry)
	}
	cmdArgs := cmdIn.execForm(t)
	if len(cmdArgs) == 0 || cmdArgs[0] != "serve" {
		t.Fatalf("line %d: CMD %q, want serve first", cmdIn.line, cmdArgs)
	}
	if d, ok := flagValue(cmdArgs, "--data"); !ok || d != volume {
		t.Errorf("line %d: CMD --data %q, want the VOLUME %q", cmdIn.line, d, volume)
	}
	// CMD must parse as serve's flags, and every listener must be reachable from
	// outside the container (not loopback) on the port that is exposed.
	serveCmd := newServeCmd()
	if err := serveCmd.ParseFlags(cmdArgs[1:]); err != nil {
		t.Errorf("line %d: CMD is not valid for serve: %v", cmdIn.line, err)
	} else if rest := serveCmd.Flags().Args(); len(rest) > 0 {
		t.Errorf("line %d: CMD has arguments serve does not take: %q", cmdIn.line, rest)
	}
	for flag, port := range map[string]string{"--mllp-addr": "2575", "--http-addr": "8080", "--nats-addr": "4222"} {
		addr, ok := flagValue(cmdArgs, flag)
		if !ok {
			addr = serveCmd.Flags().Lookup(strings.TrimPrefix(flag, "--")).DefValue
		}
		host, p, err := net.SplitHostPort(addr)
		switch {
		case err != nil:
			t.Errorf("CMD %s %q: %v", flag, addr, err)
		case p != port:
			t.Errorf("CMD %s %q listens on port %s, but the Dockerfile exposes %s for it", flag, addr, p, port)
		case host != "" && host != "0.0.0.0" && host != "::":
			t.Errorf("CMD %s %q listens on %s only: unreachable from outside the container", flag, addr, host)
		}
	}

	// The volume must exist in the image owned by the runtime user, or the
	// non-root process cannot write to a fresh named volume.
	if user != nil && !final.copiesTo(volume, strings.TrimSpace(user.args)) {
		t.Errorf("final stage does not COPY --chown=%s into the VOLUME %s: a fresh volume would be owned by root", user.args, volume)
	}

	// The binary ENTRYPOINT runs must come from the builder's go build output.
	binCopy := final.copyTo(entry[0])
	if binCopy == nil || binCopy.from == "" {
		t.Fatalf("final stage has no COPY --from=<builder> to %s", entry[0])
	}
	builder := df.stage(binCopy.from)
	if builder == nil {
		t.Fatalf("line %d: COPY --from=%s names no stage", binCopy.line, binCopy.from)
	}
	checkGoVersion(t, root, builder)
	gb := builder.goBuild(t)
	if gb == nil {
		t.Fatalf("builder stage %q has no RUN with go build", binCopy.from)
	}
	if gb.out != binCopy.src {
		t.Errorf("line %d: go build -o %s, but the final stage copies %s", gb.line, gb.out, binCopy.src)
	}
	if !builder.copiesContext() {
		t.Errorf("builder stage %q does not COPY . into its WORKDIR, where go build runs", binCopy.from)
	}
	checkDockerignore(t, root, gb)

	// 2. The builder's go build, as written, from the repository root. A cold
	// build cache (the flags differ from go test's) takes minutes on a loaded
	// 2-core machine; a warm one a second.
	bin := filepath.Join(t.TempDir(), "resultgate")
	args := slices.Clone(gb.args)
	args[gb.outIndex] = strings.Replace(args[gb.outIndex], gb.out, bin, 1)
	bctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	build := exec.CommandContext(bctx, args[0], args[1:]...)
	build.Dir = root
	build.Env = append(os.Environ(), gb.env...)
	t0 := time.Now()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("line %d: go build (env %q, args %q): %v\n%s", gb.line, gb.env, args, err, out)
	}
	t.Logf("built with env %q, args %q in %s", gb.env, args, time.Since(t0).Round(time.Millisecond))
	checkStatic(t, bin)

	// 3. Run it with the image's CMD, listeners on loopback ephemeral ports (the
	// embedded NATS server takes -1 for a random port) and --data a temp dir.
	run := slices.Clone(cmdArgs)
	run = setFlag(run, "--data", t.TempDir())
	run = setFlag(run, "--mllp-addr", "127.0.0.1:0")
	run = setFlag(run, "--http-addr", "127.0.0.1:0")
	run = setFlag(run, "--nats-addr", "127.0.0.1:-1")
	t.Logf("running %s %q", bin, run)
	p := startServeBinary(t, bin, run)

	testutil.Eventually(t, 30*time.Second, "/readyz answers 200", func() bool {
		resp, err := http.Get("http://" + p.started.HTTP + "/readyz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer scancel()
	cl, err := mllp.Dial(sctx, mllp.ClientConfig{Addr: p.started.MLLP, AckTimeout: 20 * time.Second})
	if err != nil {
		t.Fatalf("dialling MLLP %s: %v", p.started.MLLP, err)
	}
	ack, err := cl.Send(sctx, readFixture(t, "oru_r01_v251.hl7"))
	_ = cl.Close()
	if err != nil {
		t.Fatalf("sending ORU^R01: %v\n%s", err, p.log())
	}
	if code := loadgen.AckCode(ack); code != "AA" && code != "CA" {
		t.Fatalf("ACK %s, want AA or CA:\n%s", code, strings.ReplaceAll(string(ack), "\r", "\n"))
	}

	// docker stop sends SIGTERM; the documented stop timeout is 30 s.
	t0 = time.Now()
	if code := p.signal(syscall.SIGTERM, 30*time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0\n%s", code, p.log())
	}
	t.Logf("stopped %s after SIGTERM", time.Since(t0).Round(time.Millisecond))
}

// checkStatic fails unless bin is an ELF executable without a program
// interpreter or dynamic section, i.e. one that runs on a distroless/static base
// with no libc.
func checkStatic(t *testing.T, bin string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("%s: %v", bin, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("the binary has a PT_INTERP program header (dynamically linked)")
		}
		if p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary has a PT_DYNAMIC program header (dynamically linked)")
		}
	}
	for _, name := range []string{".interp", ".dynamic"} {
		if f.Section(name) != nil {
			t.Errorf("the binary has a %s section (dynamically linked)", name)
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil {
		t.Errorf("reading DT_NEEDED: %v", err)
	} else if len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %q", libs)
	}
}

// checkGoVersion fails when the builder's golang image is older than go.mod's go
// directive (the build would have to fetch a toolchain, or fail without network).
func checkGoVersion(t *testing.T, root string, builder *dfStage) {
	t.Helper()
	m := regexp.MustCompile(`^(?:docker\.io/)?(?:library/)?golang:(\d+)\.(\d+)(?:\.(\d+))?`).FindStringSubmatch(builder.image)
	if m == nil {
		t.Logf("builder image %q is not golang:X.Y; Go version not checked", builder.image)
		return
	}
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	g := regexp.MustCompile(`(?m)^go (\d+)\.(\d+)(?:\.(\d+))?\s*$`).FindStringSubmatch(string(mod))
	if g == nil {
		t.Fatal("go.mod has no go directive")
	}
	num := func(s string) int { n, _ := strconv.Atoi(s); return n }
	img := [3]int{num(m[1]), num(m[2]), num(m[3])}
	want := [3]int{num(g[1]), num(g[2]), num(g[3])}
	if m[3] == "" {
		want[2] = 0 // golang:X.Y follows the latest X.Y.Z release
	}
	if slices.Compare(img[:], want[:]) < 0 {
		t.Errorf("builder image %s is older than go.mod's go %s.%s", builder.image, g[1], strings.TrimPrefix(g[2]+"."+g[3], "."))
	}
}

// checkDockerignore fails when .dockerignore would keep out of the build context
// a file the go build needs: go.mod, go.sum, or a source or embedded file of a
// package of this module that the built package depends on.
func checkDockerignore(t *testing.T, root string, gb *goBuildCmd) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if os.IsNotExist(err) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, l := range strings.Split(string(raw), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, l)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	list := exec.CommandContext(ctx, "go", "list", "-deps",
		"-f", `{{if .Module}}{{if .Module.Main}}{{$d := .Dir}}{{range .GoFiles}}{{$d}}/{{.}}
{{end}}{{range .EmbedFiles}}{{$d}}/{{.}}
{{end}}{{end}}{{end}}`, gb.pkg)
	list.Dir = root
	list.Env = append(os.Environ(), gb.env...)
	out, err := list.Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", gb.pkg, err)
	}
	files := []string{"go.mod", "go.sum"}
	for _, f := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(root, f)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, filepath.ToSlash(rel))
	}
	if len(files) < 3 {
		t.Fatalf("go list found no source files for %s", gb.pkg)
	}
	for _, f := range files {
		if p := dockerignored(patterns, f); p != "" {
			t.Errorf(".dockerignore pattern %q leaves %s, which go build needs, out of the build context", p, f)
		}
	}
}

// dockerignored returns the .dockerignore pattern that excludes rel (a
// slash-separated path in the context) or one of its parent directories, or "".
// Later patterns win and "!" re-includes, as in Docker.
func dockerignored(patterns []string, rel string) string {
	excludedBy := ""
	parts := strings.Split(rel, "/")
	for _, p := range patterns {
		neg := strings.HasPrefix(p, "!")
		p = strings.TrimPrefix(p, "!")
		pp := strings.Split(strings.Trim(path.Clean(p), "/"), "/")
		hit := false
		for n := 1; n <= len(parts) && !hit; n++ {
			hit = matchParts(pp, parts[:n])
		}
		if hit {
			if neg {
				excludedBy = ""
			} else {
				excludedBy = p
			}
		}
	}
	return excludedBy
}

// matchParts matches path components against pattern components, where "**"
// matches any number of components and the others use path.Match.
func matchParts(pat, parts []string) bool {
	if len(pat) == 0 {
		return len(parts) == 0
	}
	if pat[0] == "**" {
		for i := 0; i <= len(parts); i++ {
			if matchParts(pat[1:], parts[i:]) {
				return true
			}
		}
		return false
	}
	if len(parts) == 0 {
		return false
	}
	ok, _ := path.Match(pat[0], parts[0])
	return ok && matchParts(pat[1:], parts[1:])
}

// flagValue returns the value of --name in args ("--name v" or "--name=v").
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1], true
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// setFlag sets --name to v in args, replacing every occurrence or appending it.
func setFlag(args []string, name, v string) []string {
	found := false
	for i, a := range args {
		if a == name && i+1 < len(args) {
			args[i+1], found = v, true
		} else if strings.HasPrefix(a, name+"=") {
			args[i], found = name+"="+v, true
		}
	}
	if !found {
		args = append(args, name, v)
	}
	return args
}

// A minimal Dockerfile model: stages of instructions, continuation lines joined,
// comments dropped. Enough for this repository's Dockerfile, not BuildKit's grammar.
type dockerfile struct {
	stages []*dfStage
}

type dfStage struct {
	line  int
	image string
	name  string
	ins   []*dfInstr
}

type dfInstr struct {
	line int
	cmd  string // upper case
	args string
}

func parseDockerfile(t *testing.T, file string) *dockerfile {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	df := &dockerfile{}
	var cur strings.Builder
	start := 0
	for i, l := range strings.Split(string(raw), "\n") {
		trimmed := strings.TrimSpace(l)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue // comments (also inside a continued instruction), blank lines
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if s, ok := strings.CutSuffix(strings.TrimRight(l, " \t\r"), `\`); ok {
			cur.WriteString(s)
			continue
		}
		cur.WriteString(l)
		text := strings.TrimSpace(cur.String())
		cur.Reset()
		if text == "" {
			continue
		}
		cmd, args, _ := strings.Cut(text, " ")
		in := &dfInstr{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			var st dfStage
			st.line = start
			for j := 0; j < len(f); j++ {
				switch {
				case strings.HasPrefix(f[j], "--"):
				case strings.EqualFold(f[j], "AS") && j+1 < len(f):
					st.name = f[j+1]
					j++
				case st.image == "":
					st.image = f[j]
				}
			}
			df.stages = append(df.stages, &st)
			continue
		}
		if len(df.stages) == 0 {
			if in.cmd != "ARG" {
				t.Fatalf("Dockerfile line %d: %s before FROM", start, in.cmd)
			}
			continue
		}
		st := df.stages[len(df.stages)-1]
		st.ins = append(st.ins, in)
	}
	if cur.Len() > 0 {
		t.Fatalf("Dockerfile ends inside a continued line")
	}
	return df
}

// stage returns the stage named (or numbered) ref.
func (df *dockerfile) stage(ref string) *dfStage {
	for i, st := range df.stages {
		if strings.EqualFold(st.name, ref) || strconv.Itoa(i) == ref {
			return st
		}
	}
	return nil
}

func (st *dfStage) all(cmd string) []*dfInstr {
	var out []*dfInstr
	for _, in := range st.ins {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

func (st *dfStage) last(cmd string) *dfInstr {
	all := st.all(cmd)
	if len(all) == 0 {
		return nil
	}
	return all[len(all)-1]
}

// execForm returns the JSON array form of ENTRYPOINT/CMD; the shell form would
// run under /bin/sh, which a distroless/static image does not have, and would
// not pass SIGTERM on to resultgate.
func (in *dfInstr) execForm(t *testing.T) []string {
	t.Helper()
	var a []string
	if err := json.Unmarshal([]byte(in.args), &a); err != nil {
		t.Fatalf("line %d: %s %s is not in exec (JSON array) form: %v", in.line, in.cmd, in.args, err)
	}
	return a
}

// list returns a JSON array or space-separated argument list (VOLUME).
func (in *dfInstr) list(t *testing.T) []string {
	if strings.HasPrefix(in.args, "[") {
		return in.execForm(t)
	}
	return strings.Fields(in.args)
}

type dfCopy struct {
	line      int
	from      string
	chown     string
	src, dest string
}

func (st *dfStage) copies() []dfCopy {
	var out []dfCopy
	for _, in := range st.all("COPY") {
		c := dfCopy{line: in.line}
		var paths []string
		for _, f := range strings.Fields(in.args) {
			switch {
			case strings.HasPrefix(f, "--from="):
				c.from = strings.TrimPrefix(f, "--from=")
			case strings.HasPrefix(f, "--chown="):
				c.chown = strings.TrimPrefix(f, "--chown=")
			case strings.HasPrefix(f, "--"):
			default:
				paths = append(paths, f)
			}
		}
		if len(paths) == 2 { // one source, one destination: all this test needs
			c.src, c.dest = paths[0], paths[1]
			out = append(out, c)
		}
	}
	return out
}

// copyTo returns the COPY whose destination is dest.
func (st *dfStage) copyTo(dest string) *dfCopy {
	for _, c := range st.copies() {
		if path.Clean(c.dest) == path.Clean(dest) {
			return &c
		}
	}
	return nil
}

// copiesTo reports whether a COPY creates dir owned by owner (USER's value).
func (st *dfStage) copiesTo(dir, owner string) bool {
	c := st.copyTo(dir)
	if c == nil {
		return false
	}
	u, g, _ := strings.Cut(c.chown, ":")
	wu, wg, _ := strings.Cut(owner, ":")
	return u == wu && (wg == "" || g == wg)
}

// copiesContext reports whether the stage copies the whole build context into
// its working directory before building.
func (st *dfStage) copiesContext() bool {
	wd := "/"
	if w := st.last("WORKDIR"); w != nil {
		wd = w.args
	}
	for _, c := range st.copies() {
		if c.from == "" && path.Clean(c.src) == "." && (path.Clean(c.dest) == "." || path.Clean(c.dest) == path.Clean(wd)) {
			return true
		}
	}
	return false
}

// goBuildCmd is the builder stage's go build: environment assignments (ENV
// instructions and the RUN line's own), the go command's words and its output.
type goBuildCmd struct {
	line     int
	env      []string
	args     []string
	out      string
	outIndex int // index in args of the word holding out
	pkg      string
}

func (st *dfStage) goBuild(t *testing.T) *goBuildCmd {
	t.Helper()
	var env []string
	for _, in := range st.ins {
		switch in.cmd {
		case "ENV":
			w := shellWords(t, in.line, in.args)
			if len(w) == 2 && !strings.Contains(w[0], "=") { // ENV KEY value
				env = append(env, w[0]+"="+w[1])
			} else {
				env = append(env, w...)
			}
		case "RUN":
			words := shellWords(t, in.line, in.args)
			// Split at shell operators into simple commands.
			var seg []string
			for i := 0; i <= len(words); i++ {
				if i < len(words) && !slices.Contains([]string{"&&", "||", ";", "|"}, words[i]) {
					seg = append(seg, words[i])
					continue
				}
				if gb := parseGoBuild(in.line, env, seg); gb != nil {
					for _, w := range append(gb.env, gb.args...) {
						if strings.ContainsAny(w, "$`") {
							t.Fatalf("Dockerfile line %d: go build word %q needs shell expansion, which this test does not do", in.line, w)
						}
					}
					return gb
				}
				seg = nil
			}
		}
	}
	return nil
}

var envAssign = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)

func parseGoBuild(line int, env, seg []string) *goBuildCmd {
	gb := &goBuildCmd{line: line, env: slices.Clone(env)}
	i := 0
	for ; i < len(seg) && envAssign.MatchString(seg[i]); i++ {
		gb.env = append(gb.env, seg[i])
	}
	if len(seg)-i < 2 || seg[i] != "go" || seg[i+1] != "build" {
		return nil
	}
	gb.args = slices.Clone(seg[i:])
	gb.outIndex = -1
	for j := 2; j < len(gb.args); j++ {
		a := gb.args[j]
		switch {
		case a == "-o" && j+1 < len(gb.args):
			gb.out, gb.outIndex = gb.args[j+1], j+1
			j++
		case strings.HasPrefix(a, "-o="):
			gb.out, gb.outIndex = strings.TrimPrefix(a, "-o="), j
		case !strings.HasPrefix(a, "-"):
			gb.pkg = a
		}
	}
	if gb.outIndex < 0 || gb.pkg == "" {
		return nil
	}
	return gb
}

// shellWords splits a shell command line into words, honouring single and double
// quotes and backslashes, and returns the operators &&, ||, ;, | as words of
// their own. It does no expansions ($ stays as it is).
func shellWords(t *testing.T, line int, s string) []string {
	t.Helper()
	var words []string
	var w strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			words = append(words, w.String())
			w.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			flush()
		case c == '\\' && i+1 < len(s):
			i++
			w.WriteByte(s[i])
			inWord = true
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				t.Fatalf("Dockerfile line %d: unterminated ' in %s", line, s)
			}
			w.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			inWord = true
			for i++; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				w.WriteByte(s[i])
			}
			if i >= len(s) {
				t.Fatalf("Dockerfile line %d: unterminated \" in %s", line, s)
			}
		case c == '&' || c == '|' || c == ';':
			flush()
			op := string(c)
			if (c == '&' || c == '|') && i+1 < len(s) && s[i+1] == c {
				op += string(c)
				i++
			}
			words = append(words, op)
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	flush()
	return words
}
