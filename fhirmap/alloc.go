package fhirmap

import (
	"unsafe"

	d4 "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	bcr "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	drpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/diagnostic_report_go_proto"
	obspb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/observation_go_proto"
)

// This file holds the mapping's allocator. One Bundle is a few hundred small
// protos (a lab panel's Observation alone is a dozen: its id, status, code
// and codings, value, quantity, unit, range, effective time, ...). Allocated
// one by one they were most of the mapping's cost: the allocations
// themselves, and the garbage collection they caused. The builder takes them
// from slabs instead, one []T per kind handed out element by element, and
// Bundle reuses a builder's slabs from one Bundle to the next (builderPool):
// once warm, mapping a message allocates almost nothing.
//
// Nothing the slabs hold outlives the Bundle call that filled them: Bundle
// returns the encoded bytes (a new slice), and clears the slabs before the
// builder goes back to the pool, so a later Bundle never sees an earlier
// one's elements and the pool keeps no message data alive. buildBundle,
// which returns the protos (the tests' reference path), uses a builder of its
// own that is never pooled.

// slab hands out Ts from a few chunks. The elements it hands out are zero
// until reset, which zeroes them again for reuse.
type slab[T any] struct {
	chunks [][]T
	cur    int // chunks[cur][used:] is what is left to hand out
	used   int
	hint   int // size of the first chunk (0: minChunk)
	bytes  int // size of all chunks, for the pool's bound
}

// minChunk is the smallest chunk a slab allocates.
const minChunk = 8

// get returns a pointer to a zero T.
func (s *slab[T]) get() *T {
	if s.cur < len(s.chunks) {
		if c := s.chunks[s.cur]; s.used < len(c) {
			p := &c[s.used]
			s.used++
			return p
		}
	}
	return &s.take(1)[0]
}

// take returns n zero Ts, as a slice of length and capacity n: appending to
// it beyond n moves it to the heap rather than over its neighbours.
func (s *slab[T]) take(n int) []T {
	for s.cur < len(s.chunks) {
		c := s.chunks[s.cur]
		if s.used+n <= len(c) {
			out := c[s.used : s.used+n : s.used+n]
			s.used += n
			return out
		}
		if s.cur == len(s.chunks)-1 {
			break
		}
		s.cur++
		s.used = 0
	}
	size := max(s.hint, minChunk)
	if k := len(s.chunks); k > 0 {
		size = 2 * len(s.chunks[k-1])
	}
	size = max(size, n)
	c := make([]T, size)
	var zero T
	s.bytes += size * int(unsafe.Sizeof(zero))
	s.chunks = append(s.chunks, c)
	s.cur, s.used = len(s.chunks)-1, n
	return c[:n:n]
}

// ptrs returns an empty slice with room for n elements, or nil when n is 0.
func (s *slab[T]) ptrs(n int) []T {
	if n == 0 {
		return nil
	}
	return s.take(n)[:0]
}

// reset zeroes what the slab handed out and makes it available again.
func (s *slab[T]) reset() {
	for i := 0; i < len(s.chunks) && i <= s.cur; i++ {
		if i == s.cur {
			clear(s.chunks[i][:s.used])
		} else {
			clear(s.chunks[i])
		}
	}
	s.cur, s.used = 0, 0
}

// arena holds the slabs of one builder, one per kind of element the
// mapping builds in numbers (rarer elements are allocated as usual).
type arena struct {
	strings     slab[d4.String]
	uris        slab[d4.Uri]
	codes       slab[d4.Code]
	ids         slab[d4.Id]
	codings     slab[codingAlloc]
	concepts    slab[d4.CodeableConcept]
	codingPtrs  slab[*d4.Coding]
	conceptPtrs slab[*d4.CodeableConcept]
	refs        slab[refAlloc]
	logicalRefs slab[logicalRefAlloc]
	refPtrs     slab[*d4.Reference]
	identifiers slab[d4.Identifier]
	identPtrs   slab[*d4.Identifier]
	dateTimes   slab[d4.DateTime]
	instants    slab[d4.Instant]
	quantities  slab[quantityAlloc]
	simples     slab[simpleAlloc]
	units       slab[unitAlloc]
	obs         slab[obsAlloc]
	reports     slab[reportAlloc]
	obsValues   slab[obsValueAlloc]
	obsEffs     slab[obsEffectiveAlloc]
	rangeAllocs slab[rangeAlloc]
	annotations slab[annotationAlloc]
	entries     slab[entryAlloc]
	entryPtrs   slab[*bcr.Bundle_Entry]
	orders      slab[order]
	obxEntries  slab[obxEntry]
	runs        slab[obsRun]
	runPtrs     slab[*obsRun]
	strs        slab[string]
	obsOuts     slab[obsOut]
	bytes       slab[byte]
}

// presize sets the first chunk of the slabs the mapping uses per OBX to
// about what n OBX and orders need, so that a new builder takes one chunk
// per slab rather than a few doubling ones. It changes nothing for slabs
// that already have chunks (a pooled builder).
func (a *arena) presize(n int) {
	hint := func(h *int, per int) {
		if *h == 0 {
			*h = per*n + 4
		}
	}
	hint(&a.codings.hint, 3)
	hint(&a.concepts.hint, 3)
	hint(&a.codingPtrs.hint, 3)
	hint(&a.conceptPtrs.hint, 1)
	hint(&a.refs.hint, 1)
	hint(&a.refPtrs.hint, 3)
	hint(&a.dateTimes.hint, 1)
	hint(&a.quantities.hint, 1)
	hint(&a.simples.hint, 2)
	hint(&a.units.hint, 1)
	hint(&a.obs.hint, 1)
	hint(&a.obsValues.hint, 1)
	hint(&a.obsEffs.hint, 1)
	hint(&a.rangeAllocs.hint, 1)
	hint(&a.entries.hint, 1)
	hint(&a.runs.hint, 1)
	hint(&a.bytes.hint, 256)
}

// size returns the bytes the arena's chunks take.
func (a *arena) size() int {
	return a.strings.bytes + a.uris.bytes + a.codes.bytes + a.ids.bytes + a.codings.bytes +
		a.concepts.bytes + a.codingPtrs.bytes + a.conceptPtrs.bytes + a.refs.bytes +
		a.logicalRefs.bytes + a.refPtrs.bytes + a.identifiers.bytes + a.identPtrs.bytes +
		a.dateTimes.bytes + a.instants.bytes + a.quantities.bytes + a.simples.bytes +
		a.units.bytes + a.obs.bytes + a.reports.bytes + a.obsValues.bytes + a.obsEffs.bytes + a.rangeAllocs.bytes +
		a.annotations.bytes + a.entries.bytes + a.entryPtrs.bytes + a.orders.bytes +
		a.obxEntries.bytes + a.runs.bytes + a.runPtrs.bytes + a.strs.bytes + a.obsOuts.bytes + a.bytes.bytes
}

// reset zeroes everything the arena handed out.
func (a *arena) reset() {
	a.strings.reset()
	a.uris.reset()
	a.codes.reset()
	a.ids.reset()
	a.codings.reset()
	a.concepts.reset()
	a.codingPtrs.reset()
	a.conceptPtrs.reset()
	a.refs.reset()
	a.logicalRefs.reset()
	a.refPtrs.reset()
	a.identifiers.reset()
	a.identPtrs.reset()
	a.dateTimes.reset()
	a.instants.reset()
	a.quantities.reset()
	a.simples.reset()
	a.units.reset()
	a.obs.reset()
	a.reports.reset()
	a.obsValues.reset()
	a.obsEffs.reset()
	a.rangeAllocs.reset()
	a.annotations.reset()
	a.entries.reset()
	a.entryPtrs.reset()
	a.orders.reset()
	a.obxEntries.reset()
	a.runs.reset()
	a.runPtrs.reset()
	a.strs.reset()
	a.obsOuts.reset()
	a.bytes.reset()
}

// Elements allocated together: a proto with the elements it always has.

// refAlloc is an in-Bundle (literal) reference.
type refAlloc struct {
	ref d4.Reference
	uri d4.Reference_Uri
	s   d4.String
}

// quantityAlloc is a Quantity with its value and comparator.
type quantityAlloc struct {
	q   d4.Quantity
	v   d4.Decimal
	cmp d4.Quantity_ComparatorCode
}

// simpleAlloc is a SimpleQuantity with its value.
type simpleAlloc struct {
	q d4.SimpleQuantity
	v d4.Decimal
}

// unitAlloc is the elements of an OBX-6 unit (see unit).
type unitAlloc struct {
	unit   d4.String
	system d4.Uri
	code   d4.Code
}

// obsAlloc is an Observation with its always-present elements.
type obsAlloc struct {
	ob  obspb.Observation
	id  d4.Id
	st  obspb.Observation_StatusCode
	cat [1]*d4.CodeableConcept
}

// reportAlloc is a DiagnosticReport with its status and effective time.
type reportAlloc struct {
	dr    drpb.DiagnosticReport
	st    drpb.DiagnosticReport_StatusCode
	eff   drpb.DiagnosticReport_EffectiveX
	effDT drpb.DiagnosticReport_EffectiveX_DateTime
}

// obsValueAlloc is an Observation.value[x] holding a Quantity, a string or
// a CodeableConcept (the common value types; see observationValue).
type obsValueAlloc struct {
	v   obspb.Observation_ValueX
	qty obspb.Observation_ValueX_Quantity
	str obspb.Observation_ValueX_StringValue
	cc  obspb.Observation_ValueX_CodeableConcept
}

// obsEffectiveAlloc is an Observation.effectiveDateTime.
type obsEffectiveAlloc struct {
	e  obspb.Observation_EffectiveX
	dt obspb.Observation_EffectiveX_DateTime
}

// rangeAlloc is an Observation.referenceRange with its text.
type rangeAlloc struct {
	rr   obspb.Observation_ReferenceRange
	ptr  [1]*obspb.Observation_ReferenceRange
	text d4.String
}

// annotationAlloc is an Observation.note with its text.
type annotationAlloc struct {
	a    d4.Annotation
	ptr  [1]*d4.Annotation
	text d4.Markdown
}

// entryAlloc is a transaction entry with its resource and request.
type entryAlloc struct {
	entry   bcr.Bundle_Entry
	cr      bcr.ContainedResource
	dr      bcr.ContainedResource_DiagnosticReport
	obs     bcr.ContainedResource_Observation
	fullURL d4.Uri
	req     bcr.Bundle_Entry_Request
	method  bcr.Bundle_Entry_Request_MethodCode
	url     d4.Uri
}

// newString returns a String holding v.
func (a *arena) newString(v string) *d4.String {
	p := a.strings.get()
	p.Value = v
	return p
}

// newURI returns a Uri holding v.
func (a *arena) newURI(v string) *d4.Uri {
	p := a.uris.get()
	p.Value = v
	return p
}

// newCode returns a Code holding v.
func (a *arena) newCode(v string) *d4.Code {
	p := a.codes.get()
	p.Value = v
	return p
}

// newIDValue returns an Id holding v.
func (a *arena) newIDValue(v string) *d4.Id {
	p := a.ids.get()
	p.Value = v
	return p
}

// str returns a FHIR string of s cleaned, or nil when s is blank.
func (a *arena) str(s string) *d4.String {
	s = clean(s)
	if s == "" {
		return nil
	}
	return a.newString(s)
}

// concat returns the parts joined. The string's bytes are the arena's: it
// must not outlive the Bundle (the mapping uses such strings for the keys
// it hashes into ids and for the ids themselves, which the encoder copies
// into its output). Chunks never move, so the string stays intact until
// reset.
func (a *arena) concat(parts ...string) string {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	if n == 0 {
		return ""
	}
	buf := a.bytes.take(n)
	i := 0
	for _, p := range parts {
		i += copy(buf[i:], p)
	}
	return unsafe.String(&buf[0], n)
}

// stringOf returns a copy of b as a string held by the arena (see concat).
func (a *arena) stringOf(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	buf := a.bytes.take(len(b))
	copy(buf, b)
	return unsafe.String(&buf[0], len(buf))
}
