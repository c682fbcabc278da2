package fhirmap

import (
	"bytes"
	"path/filepath"
	"reflect"
	"sync"
	"testing"

	"github.com/resultgate/resultgate/hl7"
)

// poolJob is one Bundle call with the result a builder of its own gives.
type poolJob struct {
	name    string
	m       *hl7.Message
	rel     Release
	opts    Options
	want    []byte
	wantErr string
}

// poolJobs maps every fixture, and messages that fail part way through (an
// OBR-25 Z after a mapped order, a second PID), with several releases and
// options, each with a builder of its own (buildBundle, never pooled).
func poolJobs(t *testing.T) []poolJob {
	t.Helper()
	files, _ := filepath.Glob("testdata/*.hl7")
	var msgs []*hl7.Message
	var names []string
	for _, f := range files {
		msgs = append(msgs, parseFile(t, f))
		names = append(names, filepath.Base(f))
	}
	const msh = "MSH|^~\\&|LAB|FAC|PORTAL|FAC|20261123083000||ORU^R01|C-2|P|2.5.1\rPID|1||X\r"
	for name, raw := range map[string]string{
		"fails in second order": msh + "OBR|1||F1|X^Y^L||||||||||||||||||||CH|F\rOBX|1|NM|A^B^LN||1|mg^^UCUM|1-2|H|||F\rOBR|2||F2|X^Y^L||||||||||||||||||||CH|Z\rOBX|1|NM|A^B^LN||2||||||F\r",
		"second PID":            msh + "OBR|1||F1|X^Y^L\rOBX|1|NM|A^B^L||1||||||F\rPID|2||Y\r",
	} {
		m, err := hl7.Parse([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
		names = append(names, name)
	}
	rels := []Release{
		testRelease(),
		{Reason: ReasonImmediate, At: testRelease().At.Add(123456789)},
		{Reason: ReasonOnCallOverride, Actor: "resultgate", ActorRole: "On Call", At: testRelease().At.Add(1000), Bases: []string{"", "state-law", " data error "}},
	}
	optss := []Options{
		testOptions(t),
		{PatientRef: "Patient/other-key", Patient: PatientIdentifiers, IdentifierSystems: map[string]string{"RGTEST": "urn:oid:1.2.3"}},
	}
	var jobs []poolJob
	for i, m := range msgs {
		for _, rel := range rels {
			for _, opts := range optss {
				j := poolJob{name: names[i], m: m, rel: rel, opts: opts}
				bundle, err := buildBundle(m, rel, opts)
				if err == nil {
					j.want, err = encodeBundle(bundle)
				}
				if err != nil {
					j.wantErr = err.Error()
				}
				jobs = append(jobs, j)
			}
		}
	}
	return jobs
}

// TestBundleReusesBuilders holds Bundle, whose builders and their slabs are
// pooled and reused, to the output of a builder of its own for every job,
// with goroutines mapping different messages at once (run it with -race):
// a reset that missed an element would show as one message's elements in
// another's Bundle, and output that shared the slabs' memory as returned
// bytes that change after later Bundles.
func TestBundleReusesBuilders(t *testing.T) {
	jobs := poolJobs(t)
	const workers, rounds = 4, 8
	type result struct {
		job int
		out []byte
	}
	results := make([][]result, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				for k := range jobs {
					i := (k*(w+1) + r) % len(jobs)
					j := jobs[i]
					out, err := Bundle(j.m, j.rel, j.opts)
					switch {
					case err != nil && err.Error() != j.wantErr:
						t.Errorf("%s: Bundle error %q, want %q", j.name, err, j.wantErr)
					case err == nil && j.wantErr != "":
						t.Errorf("%s: Bundle succeeded, want error %q", j.name, j.wantErr)
					case err == nil && !bytes.Equal(out, j.want):
						t.Errorf("%s: pooled Bundle differs from a new builder's: %s", j.name, firstDiff(out, j.want))
					case err == nil:
						results[w] = append(results[w], result{i, out})
					}
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for _, rs := range results {
		for _, r := range rs {
			if !bytes.Equal(r.out, jobs[r.job].want) {
				t.Fatalf("%s: a returned Bundle changed after later Bundles: %s", jobs[r.job].name, firstDiff(r.out, jobs[r.job].want))
			}
		}
	}
}

// TestBuilderReset checks that reset leaves nothing of a mapping behind:
// every element the slabs handed out is zero again, and the builder's
// retained slices and maps are empty.
func TestBuilderReset(t *testing.T) {
	for _, j := range poolJobs(t) {
		b := new(builder)
		_, _ = b.bundle(j.m, j.rel, j.opts)
		if b.ar.size() == 0 {
			if j.wantErr == "" {
				t.Fatalf("%s: the slabs handed out nothing", j.name)
			}
			continue
		}
		b.reset()
		ar := reflect.ValueOf(&b.ar).Elem()
		for i := range ar.NumField() {
			chunks := ar.Field(i).FieldByName("chunks")
			for c := range chunks.Len() {
				chunk := chunks.Index(c)
				for e := range chunk.Len() {
					if !chunk.Index(e).IsZero() {
						t.Fatalf("%s: after reset, arena.%s chunk %d element %d is not zero", j.name, ar.Type().Field(i).Name, c, e)
					}
				}
			}
		}
		for _, o := range b.orders[:cap(b.orders)] {
			if o != nil {
				t.Fatalf("%s: after reset, builder.orders keeps an order", j.name)
			}
		}
		for _, e := range b.obxAll[:cap(b.obxAll)] {
			if e != nil {
				t.Fatalf("%s: after reset, builder.obxAll keeps an OBX", j.name)
			}
		}
		if len(b.usedKeys)+len(b.seen)+len(b.obsCats) != 0 {
			t.Fatalf("%s: after reset, the builder's maps are not empty", j.name)
		}
		for _, buf := range [][]byte{b.scratch[:cap(b.scratch)], b.keyBuf[:cap(b.keyBuf)]} {
			if len(bytes.Trim(buf, "\x00")) != 0 {
				t.Fatalf("%s: after reset, a key buffer is not cleared", j.name)
			}
		}
		// Every other field (the message, options, release, the Provenance,
		// Bundle and Patient parts, the shared subject) is zero.
		retained := map[string]bool{"ar": true, "orders": true, "obxAll": true, "usedKeys": true, "seen": true, "obsCats": true, "scratch": true, "keyBuf": true}
		bv := reflect.ValueOf(b).Elem()
		for i := range bv.NumField() {
			if name := bv.Type().Field(i).Name; !retained[name] && !bv.Field(i).IsZero() {
				t.Fatalf("%s: after reset, builder.%s is not zero", j.name, name)
			}
		}
	}
}
