package policy

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/resultgate/resultgate/hl7"
)

// benchMessage is the ~2 KB surgical pathology ORU with a narrative report.
func benchMessage(b *testing.B) []byte {
	b.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "classify", "surgical_breast_carcinoma.hl7"))
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// benchClassifier compiles the default rule set (once per benchmark, outside
// the timed loop).
func benchClassifier(b *testing.B) *Classifier {
	b.Helper()
	c, err := NewClassifier(DefaultRuleSet())
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// cpuTime returns the process's user+system CPU time. The benchmarks report
// CPU time per operation ("cpu-ns/op") beside wall time because shared CI
// machines are often oversubscribed: wall time then measures the queue, CPU
// time the work, and 1e9 / cpu-ns/op is the throughput of one core.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds cpu-ns/op and classifications/s/core metrics.
func reportCPU(b *testing.B, start time.Duration) {
	d := cpuTime() - start
	if b.N == 0 || d <= 0 {
		return
	}
	per := float64(d.Nanoseconds()) / float64(b.N)
	b.ReportMetric(per, "cpu-ns/op")
	b.ReportMetric(1e9/per, "ops/s/core")
}

// policyPath is one way of turning the benchmark message into a
// classification: parse (nil: the message is parsed once, outside the loop)
// and classify, which returns the classification and a release to call once
// it has been checked (nil when nothing is pooled).
type policyPath struct {
	parse    func([]byte) (*hl7.Message, error)
	classify func(c *Classifier, m *hl7.Message) (Classification, func(), error)
}

// benchPolicyPath runs p over the benchmark message and reports CPU per op.
func benchPolicyPath(b *testing.B, p policyPath) {
	data := benchMessage(b)
	c := benchClassifier(b)
	m, err := hl7.Parse(data)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	start := cpuTime()
	for b.Loop() {
		if p.parse != nil {
			if m, err = p.parse(data); err != nil {
				b.Fatal(err)
			}
		}
		cl, release, err := p.classify(c, m)
		if err != nil {
			b.Fatal(err)
		}
		if !cl.Has(TagMalignancy) {
			b.Fatal("no malignancy")
		}
		if release != nil {
			release()
		}
	}
	reportCPU(b, start)
}

// fresh builds the report with FromHL7 and classifies it with Classify: new
// memory for every message.
func fresh(c *Classifier, m *hl7.Message) (Classification, func(), error) {
	r, err := FromHL7(m, time.UTC)
	if err != nil {
		return Classification{}, nil, err
	}
	return c.Classify(r, nil), nil, nil
}

// pooled is the router's classify step: FromHL7Pooled and ClassifyPooled,
// both released after the message.
func pooled(c *Classifier, m *hl7.Message) (Classification, func(), error) {
	r, release, err := FromHL7Pooled(m, time.UTC)
	if err != nil {
		return Classification{}, nil, err
	}
	cl, releaseResult := c.ClassifyPooled(r, nil)
	return cl, func() { releaseResult(); release() }, nil
}

// reusing returns a path that builds the report with one ReportBuilder
// (reused arrays) and classifies it into new memory.
func reusing() func(c *Classifier, m *hl7.Message) (Classification, func(), error) {
	var rb ReportBuilder
	return func(c *Classifier, m *hl7.Message) (Classification, func(), error) {
		r, err := rb.FromHL7(m, time.UTC)
		if err != nil {
			return Classification{}, nil, err
		}
		return c.Classify(r, nil), nil, nil
	}
}

// parseInPlace parses without copying, as the router parses the NATS
// message's own buffer.
func parseInPlace(data []byte) (*hl7.Message, error) {
	return hl7.ParseWithOptions(data, hl7.ParseOptions{NoCopy: true})
}

// BenchmarkFromHL7Classify measures parse + FromHL7 + Classify for a 2 KB
// pathology ORU from its bytes, in new memory for every message.
func BenchmarkFromHL7Classify(b *testing.B) {
	benchPolicyPath(b, policyPath{parse: hl7.Parse, classify: fresh})
}

// BenchmarkPolicyClassify measures the policy's own work per message on the
// parsed ORU: FromHL7 builds the report and Classify tags it.
func BenchmarkPolicyClassify(b *testing.B) { benchPolicyPath(b, policyPath{classify: fresh}) }

// BenchmarkPolicyClassifyReuse is BenchmarkPolicyClassify with the report
// built by one ReportBuilder; the Classification is still new for each message.
func BenchmarkPolicyClassifyReuse(b *testing.B) {
	benchPolicyPath(b, policyPath{classify: reusing()})
}

// BenchmarkPolicyClassifyPooled is the classify step's path in the router:
// FromHL7Pooled and ClassifyPooled on the parsed message, both released
// after each message.
func BenchmarkPolicyClassifyPooled(b *testing.B) { benchPolicyPath(b, policyPath{classify: pooled}) }

// BenchmarkFromHL7ClassifyReuse is BenchmarkFromHL7Classify with the report
// built by one ReportBuilder.
func BenchmarkFromHL7ClassifyReuse(b *testing.B) {
	benchPolicyPath(b, policyPath{parse: hl7.Parse, classify: reusing()})
}

// BenchmarkFromHL7ClassifyPooled is the router's whole per-message policy
// path from the stored bytes: hl7.Parse in place, then the pooled path.
func BenchmarkFromHL7ClassifyPooled(b *testing.B) {
	benchPolicyPath(b, policyPath{parse: parseInPlace, classify: pooled})
}

// BenchmarkClassify measures Classify alone on the same report.
func BenchmarkClassify(b *testing.B) {
	data := benchMessage(b)
	c := benchClassifier(b)
	r := mustReport(b, data)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	start := cpuTime()
	for b.Loop() {
		if cl := c.Classify(r, nil); !cl.Has(TagMalignancy) {
			b.Fatal("no malignancy")
		}
	}
	reportCPU(b, start)
}

// BenchmarkClassifyParallel runs Classify on every core (the classifier is
// shared, its scratch space pooled).
func BenchmarkClassifyParallel(b *testing.B) {
	data := benchMessage(b)
	c := benchClassifier(b)
	r := mustReport(b, data)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Classify(r, nil)
		}
	})
}

// BenchmarkNewClassifier measures compiling the default rule set (done once).
func BenchmarkNewClassifier(b *testing.B) {
	rs := DefaultRuleSet()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewClassifier(rs); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParse measures hl7.Parse alone on the same message, to separate the
// parser's share from FromHL7's.
func BenchmarkParse(b *testing.B) {
	data := benchMessage(b)
	b.ReportAllocs()
	start := cpuTime()
	for b.Loop() {
		if _, err := hl7.Parse(data); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, start)
}

// BenchmarkParseFromHL7 measures hl7.Parse + FromHL7 (no classification).
func BenchmarkParseFromHL7(b *testing.B) {
	data := benchMessage(b)
	b.ReportAllocs()
	start := cpuTime()
	for b.Loop() {
		m, err := hl7.Parse(data)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := FromHL7(m, time.UTC); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, start)
}

// BenchmarkScan measures the lexicon automaton alone over the free texts of
// the same report (the part of Classify that is linear in the text).
func BenchmarkScan(b *testing.B) {
	data := benchMessage(b)
	c := benchClassifier(b)
	r := mustReport(b, data)
	var texts []string
	n := 0
	for _, o := range r.Orders {
		for _, ob := range o.Observations {
			for _, t := range ob.Texts {
				texts = append(texts, t.Value)
				n += len(t.Value)
			}
		}
	}
	var sc scanner
	var ms []rawMatch
	b.SetBytes(int64(n))
	start := cpuTime()
	for b.Loop() {
		for _, t := range texts {
			ms = c.lex.scan(&sc, t, ms[:0])
		}
	}
	if len(ms) == 0 && n > 0 {
		b.Fatal("no match in the last text")
	}
	reportCPU(b, start)
}

// BenchmarkFromHL7 measures FromHL7 alone on the parsed message.
func BenchmarkFromHL7(b *testing.B) {
	data := benchMessage(b)
	m, err := hl7.Parse(data)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	start := cpuTime()
	for b.Loop() {
		if _, err := FromHL7(m, time.UTC); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, start)
}
