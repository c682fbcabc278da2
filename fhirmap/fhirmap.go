package fhirmap

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/fhir/go/fhirversion"
	"github.com/google/fhir/go/jsonformat"

	"github.com/resultgate/resultgate/hl7"

	c4 "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	d4 "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	bcr "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	ptpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/patient_go_proto"
)

// Release says how, why, by whom and when a result was released to the portal.
// It becomes the Bundle's Provenance resource.
type Release struct {
	// HoldID is the opaque hold identifier; empty when the result was never held.
	HoldID string
	// Reason is the release path: immediate, clinician-release, oncall-override,
	// deadline, patient-revoked or correction (see the Reason* constants).
	Reason string
	// Actor identifies who released it (a clinician's user id, or "resultgate"
	// for automatic releases); empty means resultgate itself.
	Actor string
	// ActorRole is the actor's role, e.g. "ordering-provider" or "on-call".
	ActorRole string
	// Note is the optional plain-language note for the patient.
	Note string
	// At is when the release happened. It is required: Bundle never reads the
	// clock, so a re-run with the same Release produces the same bytes.
	At time.Time
	// Bases are the lawful bases the hold was recorded with (empty for an
	// immediate release).
	Bases []string
	// Notify is the notification directive for the portal (e.g. "push",
	// "quiet"); empty means the portal's default.
	Notify string
}

// Release reasons (Release.Reason).
const (
	ReasonImmediate        = "immediate"
	ReasonClinicianRelease = "clinician-release"
	ReasonOnCallOverride   = "oncall-override"
	ReasonDeadline         = "deadline"
	ReasonPatientRevoked   = "patient-revoked"
	ReasonPatientDelay     = "patient-delay-ended"
	ReasonCorrection       = "correction"
)

// reasonDisplay holds the display text of each release reason.
var reasonDisplay = map[string]string{
	ReasonImmediate:        "Released immediately (no hold)",
	ReasonClinicianRelease: "Released by a clinician after review",
	ReasonOnCallOverride:   "Released by an on-call clinician override",
	ReasonDeadline:         "Released automatically when the hold deadline was reached",
	ReasonPatientRevoked:   "Released because the patient revoked the request to hold",
	ReasonPatientDelay:     "Released when the delay the patient asked for ended",
	ReasonCorrection:       "Released because the sender corrected or cancelled the result",
}

// Options are the deployment-specific inputs of the mapping.
type Options struct {
	// PatientRef is the literal reference used as subject of every resource,
	// "Patient/<id>" where <id> is a FHIR id ([A-Za-z0-9.-]{1,64}). The router
	// supplies an opaque keyed hash: no MRN or name ever appears in the Bundle.
	PatientRef string
	// Location is the time zone of HL7 timestamps that carry no UTC offset.
	// Nil means UTC.
	Location *time.Location
	// IDPrefix is prepended to every resource id (at most 28 characters from
	// [A-Za-z0-9.-]); it lets several deployments share one FHIR server.
	IDPrefix string
	// Validate turns on full runtime validation: every Bundle is parsed back
	// with google/fhir/go's validating unmarshaller (JSON syntax, primitive
	// formats, required fields, reference types) before it is returned, and
	// refused with ErrInvalidBundle if it fails. It is off by default: the
	// mapping only emits what validates (the tests check every Bundle they
	// produce), and the check costs about 60 times the mapping and encoding
	// (see docs/BENCHMARKS.md). Config key fhir.validate.
	Validate bool
	// Patient says what the Bundle's Patient resource (id: PatientRef's id)
	// carries besides the PID-3 identifiers and the keyed hash:
	// PatientDemographics (also when empty) adds name, birth date and sex;
	// PatientIdentifiers adds nothing. Config key fhir.patient.
	Patient string
	// IdentifierSystems maps a PID-3 assigning authority, by its namespace
	// ID (CX-4.1) or else its universal ID (CX-4.2), to the FHIR system URI
	// of the identifiers it assigns. An authority not in it gets the default
	// system (see docs/FHIR.md). Config key fhir.identifier_systems.
	IdentifierSystems map[string]string
}

// Errors returned by Bundle. Each is wrapped with detail; test with errors.Is.
var (
	// ErrUnsupportedMessage means the message is not an ORU (or an MDM with
	// OBX content), so there is no result to map.
	ErrUnsupportedMessage = errors.New("fhirmap: unsupported message type")
	// ErrNoResults means the message holds no OBR (ORU) and no OBX (MDM).
	ErrNoResults = errors.New("fhirmap: message has no result to map")
	// ErrMultiplePatients means the message carries more than one PID: one
	// Bundle has one subject, and mapping another patient's results onto it
	// would disclose them to the wrong person.
	ErrMultiplePatients = errors.New("fhirmap: message has results for more than one patient")
	// ErrResultStatus means OBR-25 holds a status that must not be mapped to a
	// report (Y: no order on record, Z: no record of this patient).
	ErrResultStatus = errors.New("fhirmap: result status cannot be mapped")
	// ErrInvalidOptions means Options are unusable (PatientRef, IDPrefix,
	// Patient or an IdentifierSystems URI).
	ErrInvalidOptions = errors.New("fhirmap: invalid options")
	// ErrInvalidRelease means Release is unusable (unknown reason, zero time).
	ErrInvalidRelease = errors.New("fhirmap: invalid release")
	// ErrInvalidBundle means the produced Bundle failed google/fhir/go
	// validation. It indicates input this mapping cannot represent; the
	// message should be dead-lettered with this error.
	ErrInvalidBundle = errors.New("fhirmap: bundle failed FHIR validation")
)

var (
	codecOnce    sync.Once
	marshaller   *jsonformat.Marshaller
	unmarshaller *jsonformat.Unmarshaller
	codecErr     error
)

// codecs returns the shared google/fhir/go marshaller and validating
// unmarshaller. Both are safe for concurrent use once built.
func codecs() (*jsonformat.Marshaller, *jsonformat.Unmarshaller, error) {
	codecOnce.Do(func() {
		marshaller, codecErr = jsonformat.NewMarshaller(false, "", "", fhirversion.R4)
		if codecErr != nil {
			return
		}
		unmarshaller, codecErr = jsonformat.NewUnmarshaller("UTC", fhirversion.R4)
	})
	return marshaller, unmarshaller, codecErr
}

// Validate parses data as FHIR R4 JSON with google/fhir/go's validating
// unmarshaller (JSON syntax and primitive formats, then required fields,
// primitive formats and reference types) and reports the problems. The tests
// run it on every Bundle they produce; Bundle runs it with Options.Validate;
// it is available to consumers.
func Validate(data []byte) error {
	_, u, err := codecs()
	if err != nil {
		return err
	}
	if _, err := u.Unmarshal(data); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidBundle, err)
	}
	return nil
}

// Bundle maps the result message m, released as rel, to a FHIR R4 JSON Bundle
// of type transaction: the Patient opts.PatientRef names (its PID-3
// identifiers, the keyed hash and, per opts.Patient, name, birth date and
// sex), one DiagnosticReport per OBR (or MDM document) with its Observations,
// all with subject opts.PatientRef, and one Provenance targeting the
// DiagnosticReports. Entries are PUTs to ids derived from the order's
// identity (see docs/FHIR.md), so the same input always gives the same bytes
// and re-publishing updates rather than duplicates.
//
// The mapping builds google/fhir/go's R4 protos; Bundle writes them with its
// own encoder (encode.go), which gives the bytes jsonformat gives, without
// reflection. With opts.Validate the output is also parsed back with
// google/fhir/go's validating unmarshaller (see Validate) and refused with
// ErrInvalidBundle if it does not validate.
func Bundle(m *hl7.Message, rel Release, opts Options) ([]byte, error) {
	b := builderPool.Get().(*builder)
	out, err := b.bundle(m, rel, opts)
	b.release()
	if err != nil {
		return nil, err
	}
	if opts.Validate {
		if err := Validate(out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// builderPool holds builders whose slabs Bundle reuses (see alloc.go).
var builderPool = sync.Pool{New: func() any { return new(builder) }}

// A builder that mapped a message larger than this is not pooled, so one
// outsized message does not keep its slabs alive: maxPooledArena bytes of
// slabs, maxPooledOBX OBX segments or orders (its maps and slices),
// maxPooledKeys bytes of key buffers.
const (
	maxPooledArena = 1 << 20
	maxPooledOBX   = 2048
	maxPooledKeys  = 64 << 10
)

// bundle maps m and encodes the Bundle. The protos it builds live in b's
// slabs; only the encoded bytes (a new slice) leave it.
func (b *builder) bundle(m *hl7.Message, rel Release, opts Options) ([]byte, error) {
	bundle, err := b.run(m, rel, opts)
	if err != nil {
		return nil, err
	}
	return encodeBundle(bundle)
}

// release resets b and puts it back in builderPool, unless it grew too big.
func (b *builder) release() {
	if b.ar.size() > maxPooledArena || cap(b.obxAll) > maxPooledOBX || cap(b.orders) > maxPooledOBX ||
		cap(b.scratch)+cap(b.keyBuf) > maxPooledKeys {
		return
	}
	b.reset()
	builderPool.Put(b)
}

// reset zeroes everything b holds of the last mapping, keeping the memory.
func (b *builder) reset() {
	b.ar.reset()
	clear(b.orders)
	clear(b.obxAll)
	clear(b.usedKeys)
	clear(b.seen)
	clear(b.obsCats)
	clear(b.scratch[:cap(b.scratch)])
	clear(b.keyBuf[:cap(b.keyBuf)])
	*b = builder{
		ar:       b.ar,
		orders:   b.orders[:0],
		obxAll:   b.obxAll[:0],
		usedKeys: b.usedKeys,
		seen:     b.seen,
		obsCats:  b.obsCats,
		scratch:  b.scratch[:0],
		keyBuf:   b.keyBuf[:0],
	}
}

// buildBundle runs the mapping and returns the Bundle proto, built by a
// builder of its own (never pooled: the proto is the caller's).
func buildBundle(m *hl7.Message, rel Release, opts Options) (*bcr.Bundle, error) {
	return new(builder).run(m, rel, opts)
}

// run checks the inputs and runs the mapping with b, which must be new or
// reset.
func (b *builder) run(m *hl7.Message, rel Release, opts Options) (*bcr.Bundle, error) {
	if m == nil {
		return nil, fmt.Errorf("%w: nil message", ErrNoResults)
	}
	if err := checkOptions(opts); err != nil {
		return nil, err
	}
	if err := checkRelease(rel); err != nil {
		return nil, err
	}
	if err := b.init(m, rel, opts); err != nil {
		return nil, err
	}
	return b.build()
}

// encodeBundle writes bundle as FHIR JSON, byte for byte as google/fhir/go's
// jsonformat marshaller would.
func encodeBundle(bundle *bcr.Bundle) ([]byte, error) {
	var e encoder
	out := e.bundle(make([]byte, 0, 4096+len(bundle.GetEntry())*1024), bundle)
	if e.err != nil {
		return nil, fmt.Errorf("%w: encoding: %v", ErrInvalidBundle, e.err)
	}
	return out, nil
}

// CheckOptions reports whether o is usable, with the checks Bundle makes
// (an error wrapping ErrInvalidOptions): a caller that builds Options from
// configuration checks them once at start rather than on every release.
func CheckOptions(o Options) error { return checkOptions(o) }

func checkOptions(o Options) error {
	id, ok := strings.CutPrefix(o.PatientRef, "Patient/")
	if !ok || !isIDChars(id, 1, 64) {
		return fmt.Errorf("%w: PatientRef must be \"Patient/<id>\" with a FHIR id", ErrInvalidOptions)
	}
	if !isIDChars(o.IDPrefix, 0, 28) {
		return fmt.Errorf("%w: IDPrefix must be at most 28 characters from [A-Za-z0-9.-]", ErrInvalidOptions)
	}
	switch o.Patient {
	case "", PatientDemographics, PatientIdentifiers:
	default:
		return fmt.Errorf("%w: Patient must be %q or %q", ErrInvalidOptions, PatientDemographics, PatientIdentifiers)
	}
	for k, v := range o.IdentifierSystems {
		if err := checkSystemURI(v); err != nil {
			return fmt.Errorf("%w: IdentifierSystems[%q]: %v", ErrInvalidOptions, k, err)
		}
	}
	return nil
}

func checkRelease(r Release) error {
	if _, ok := reasonDisplay[r.Reason]; !ok {
		return fmt.Errorf("%w: unknown reason %q", ErrInvalidRelease, r.Reason)
	}
	if r.At.IsZero() {
		return fmt.Errorf("%w: release time At is zero", ErrInvalidRelease)
	}
	if y := r.At.UTC().Year(); y < 1 || y > 9999 {
		return fmt.Errorf("%w: release time At out of range", ErrInvalidRelease)
	}
	if r.Notify != "" && !isCode(r.Notify) {
		return fmt.Errorf("%w: Notify %q is not a FHIR code", ErrInvalidRelease, r.Notify)
	}
	return nil
}

// builder holds the state of one mapping. Bundle reuses builders (see
// builderPool and reset); buildBundle makes a new one per call.
type builder struct {
	m    *hl7.Message
	rel  Release
	opts Options
	loc  *time.Location

	controlID string
	pid       *hl7.Segment // nil when the message has none
	scope     string       // sending application^facility, scopes order identities
	orders    []*order
	obxAll    []*obxEntry // every mapped OBX in order; each order's obxs is a part of it
	isMDM     bool

	usedKeys map[string]int // DiagnosticReport identity keys already used
	seen     map[string]int // OBX-3|OBX-4 already used in the current order (observations)
	subj     *d4.Reference  // the Patient reference every resource shares (subject)
	subjRef  refAlloc       // the elements of subj
	prov     provAlloc      // the Provenance (provenance)

	bundleParts bundleParts                    // the Bundle, its Patient and what they have once
	obsCats     map[string]*d4.CodeableConcept // Observation categories, shared (obsCategory)

	scratch []byte // newID's hash input
	keyBuf  []byte // the Provenance key being built
	ar      arena  // the slabs the Bundle's elements come from
}

// order is one OBR (or MDM document) with what belongs to it.
type order struct {
	obr   *hl7.Segment // nil for an MDM document without OBR
	orc   *hl7.Segment
	txa   *hl7.Segment
	pos   int // 1-based OBR occurrence (or document number)
	first int // index of its first OBX in builder.obxAll
	obxs  []*obxEntry
	notes []string
}

// obxEntry is one OBX with the NTEs that follow it.
type obxEntry struct {
	seg   *hl7.Segment
	pos   int // 1-based OBX occurrence in the message
	notes []string
}

// init starts the mapping of m: it reads the MSH and groups the segments.
func (b *builder) init(m *hl7.Message, rel Release, opts Options) error {
	msh := m.Segment(0)
	if msh == nil || msh.Name() != "MSH" {
		return fmt.Errorf("%w: no MSH segment", ErrUnsupportedMessage)
	}
	code := clean(msh.Field(9).Component(1))
	switch code {
	case "ORU":
	case "MDM":
	default:
		return fmt.Errorf("%w: MSH-9 %q (want ORU or MDM)", ErrUnsupportedMessage, code)
	}
	b.m, b.rel, b.opts, b.loc = m, rel, opts, opts.Location
	b.controlID = clean(msh.Field(10).Value())
	b.scope = b.ar.concat(clean(msh.Field(3).Component(1)), "^", clean(msh.Field(4).Component(1)))
	b.isMDM = code == "MDM"
	if b.usedKeys == nil {
		b.usedKeys = map[string]int{}
	}
	if b.loc == nil {
		b.loc = time.UTC
	}
	if err := b.group(m); err != nil {
		return err
	}
	b.ar.presize(len(b.obxAll) + len(b.orders))
	return nil
}

// seenBase returns the builder's map of OBX-3|OBX-4 keys, emptied.
func (b *builder) seenBase() map[string]int {
	if b.seen == nil {
		b.seen = map[string]int{}
	}
	clear(b.seen)
	return b.seen
}

// group walks the segments into orders. It follows the ORU_R01 structure
// (PID, ORC, OBR, NTE, OBX, NTE, SPM, OBX) and the MDM structure (TXA, OBX),
// tolerating what senders commonly get wrong.
func (b *builder) group(m *hl7.Message) error {
	var (
		cur        *order
		pendingORC *hl7.Segment
		txa        *hl7.Segment
		lastOBX    *obxEntry
		inSpecimen bool
		pids       int
		obrs, obxs int
	)
	for i := 1; i < m.NumSegments(); i++ {
		s := m.Segment(i)
		switch s.Name() {
		case "PID":
			pids++
			if pids > 1 {
				return ErrMultiplePatients
			}
			b.pid = s
		case "ORC":
			pendingORC = s
		case "TXA":
			txa = s
		case "OBR":
			obrs++
			cur = b.newOrder(s, pendingORC, txa, obrs)
			pendingORC = nil
			lastOBX = nil
			inSpecimen = false
			b.orders = append(b.orders, cur)
		case "SPM":
			// OBX after SPM describe the specimen, not the result (ORU_R01
			// SPECIMEN_OBSERVATION group), and are not mapped — but only when
			// the order already has its results: some senders (NAACCR v5
			// pathology) put SPM before the result OBX, and dropping those
			// would release a report without its content.
			inSpecimen = cur != nil && len(cur.obxs) > 0
			lastOBX = nil
		case "OBX":
			obxs++
			if inSpecimen {
				lastOBX = nil
				continue
			}
			if cur == nil {
				if !b.isMDM {
					// Patient-level OBX before any OBR (PATIENT_OBSERVATION)
					// are not part of a report: not mapped.
					continue
				}
				cur = b.newOrder(nil, pendingORC, txa, 1)
				b.orders = append(b.orders, cur)
			}
			lastOBX = b.ar.obxEntries.get()
			lastOBX.seg, lastOBX.pos = s, obxs
			b.obxAll = append(b.obxAll, lastOBX)
			cur.obxs = b.obxAll[cur.first:len(b.obxAll):len(b.obxAll)]
		case "NTE":
			text := noteText(s)
			switch {
			case inSpecimen:
			case lastOBX != nil:
				if lastOBX.notes == nil {
					lastOBX.notes = b.ar.strs.ptrs(4)
				}
				lastOBX.notes = append(lastOBX.notes, text)
			case cur != nil:
				cur.notes = append(cur.notes, text)
			}
		case "MSH", "BHS", "FHS":
			// A second message in the same buffer is the caller's job to split.
			return fmt.Errorf("%w: more than one message (%s)", ErrUnsupportedMessage, s.Name())
		}
	}
	if len(b.orders) == 0 {
		if b.isMDM {
			return fmt.Errorf("%w: MDM without OBX", ErrNoResults)
		}
		return fmt.Errorf("%w: ORU without OBR", ErrNoResults)
	}
	return nil
}

// newOrder returns a new order whose OBX start at the next one grouped.
func (b *builder) newOrder(obr, orc, txa *hl7.Segment, pos int) *order {
	o := b.ar.orders.get()
	o.obr, o.orc, o.txa, o.pos, o.first = obr, orc, txa, pos, len(b.obxAll)
	return o
}

// noteText returns NTE-3 (all repetitions, one line each).
func noteText(s *hl7.Segment) string {
	f := s.Field(3)
	n := f.Reps()
	if n <= 1 {
		return f.Value()
	}
	lines := make([]string, 0, n)
	for _, rep := range f.AllReps() {
		lines = append(lines, rep.Value())
	}
	return strings.Join(lines, "\n")
}

func (b *builder) build() (*bcr.Bundle, error) {
	a := &b.ar
	// The Patient comes first: the resource every subject reference names,
	// with the identifiers the portal knows the patient by.
	pat, patID := b.patient()
	patEntry := b.entry(b.newID("Patient", patID))
	patEntry.url.Value = b.opts.PatientRef // "Patient/" + patID
	x := &b.bundleParts
	x.pat.Patient = pat
	patEntry.cr.OneofResource = &x.pat
	entries := a.entryPtrs.ptrs(2 + len(b.orders) + len(b.obxAll))
	entries = append(entries, &patEntry.entry)
	reports := a.refPtrs.ptrs(len(b.orders))
	reportKeys := a.strs.ptrs(len(b.orders))
	for _, o := range b.orders {
		dr, obs, key, err := b.mapOrder(o)
		if err != nil {
			return nil, err
		}
		e := b.entry(dr.id)
		e.dr.DiagnosticReport = dr.res
		e.cr.OneofResource = &e.dr
		entries = append(entries, &e.entry)
		for _, ob := range obs {
			e := b.entry(ob.id)
			e.obs.Observation = ob.res
			e.cr.OneofResource = &e.obs
			entries = append(entries, &e.entry)
		}
		reports = append(reports, a.refTo(dr.id))
		reportKeys = append(reportKeys, key)
	}
	// The Provenance key: scope|control id|hold id|reason|release time|report keys joined by ",".
	k := b.keyBuf[:0]
	for _, part := range [...]string{b.scope, b.controlID, b.rel.HoldID, b.rel.Reason} {
		k = append(k, part...)
		k = append(k, '|')
	}
	k = b.rel.At.UTC().AppendFormat(k, time.RFC3339Nano)
	k = append(k, '|')
	for i, rk := range reportKeys {
		if i > 0 {
			k = append(k, ',')
		}
		k = append(k, rk...)
	}
	b.keyBuf = k
	provKey := a.stringOf(k)
	prov := b.provenance(provKey, reports)
	provEntry := b.entry(prov.id)
	x.prov.Provenance = prov.res
	provEntry.cr.OneofResource = &x.prov
	entries = append(entries, &provEntry.entry)

	bid := b.newID("Bundle", provKey)
	bu := &x.bundle
	x.id.Value = bid.id
	x.system.Value, x.value.Value = "urn:ietf:rfc:3986", bid.urn
	x.ident.System, x.ident.Value = &x.system, &x.value
	x.typ.Value = c4.BundleTypeCode_TRANSACTION
	bu.Id, bu.Identifier, bu.Type = &x.id, &x.ident, &x.typ
	bu.Timestamp = instantOf(&x.timestamp, b.rel.At)
	bu.Entry = entries
	return bu, nil
}

// bundleParts is the Bundle and the elements a Bundle has once: one per
// builder.
type bundleParts struct {
	bundle    bcr.Bundle
	id        d4.Id
	ident     d4.Identifier
	system    d4.Uri
	value     d4.String
	typ       bcr.Bundle_TypeCode
	timestamp d4.Instant
	pat       bcr.ContainedResource_Patient
	prov      bcr.ContainedResource_Provenance
	patient   ptpb.Patient
	patID     d4.Id
	gender    ptpb.Patient_GenderCode
	key       d4.Identifier
	keySystem d4.Uri
	keyValue  d4.String
}

// entry returns a transaction entry for the resource with id, its resource
// still to be set: fullUrl urn:uuid, PUT to its id (an idempotent
// create-or-update).
func (b *builder) entry(id rid) *entryAlloc {
	x := b.ar.entries.get()
	x.fullURL.Value = id.urn
	x.method.Value = c4.HTTPVerbCode_PUT
	x.url.Value = id.url
	x.req.Method, x.req.Url = &x.method, &x.url
	x.entry.FullUrl, x.entry.Resource, x.entry.Request = &x.fullURL, &x.cr, &x.req
	return x
}
