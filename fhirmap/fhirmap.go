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
	// produce), and the check costs about 27 times the mapping and encoding
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
	bundle, err := buildBundle(m, rel, opts)
	if err != nil {
		return nil, err
	}
	out, err := encodeBundle(bundle)
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

// buildBundle runs the mapping and returns the Bundle proto.
func buildBundle(m *hl7.Message, rel Release, opts Options) (*bcr.Bundle, error) {
	if m == nil {
		return nil, fmt.Errorf("%w: nil message", ErrNoResults)
	}
	if err := checkOptions(opts); err != nil {
		return nil, err
	}
	if err := checkRelease(rel); err != nil {
		return nil, err
	}
	b, err := newBuilder(m, rel, opts)
	if err != nil {
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

// builder holds the state of one mapping.
type builder struct {
	m    *hl7.Message
	rel  Release
	opts Options
	loc  *time.Location

	controlID string
	pid       *hl7.Segment // nil when the message has none
	scope     string       // sending application^facility, scopes order identities
	orders    []*order
	isMDM     bool

	usedKeys map[string]int                 // DiagnosticReport identity keys already used
	subj     *d4.Reference                  // the Patient reference every resource shares (subject)
	obsCats  map[string]*d4.CodeableConcept // Observation categories, shared (obsCategory)
}

// order is one OBR (or MDM document) with what belongs to it.
type order struct {
	obr   *hl7.Segment // nil for an MDM document without OBR
	orc   *hl7.Segment
	txa   *hl7.Segment
	pos   int // 1-based OBR occurrence (or document number)
	obxs  []*obxEntry
	notes []string
}

// obxEntry is one OBX with the NTEs that follow it.
type obxEntry struct {
	seg   *hl7.Segment
	pos   int // 1-based OBX occurrence in the message
	notes []string
}

func newBuilder(m *hl7.Message, rel Release, opts Options) (*builder, error) {
	segs := m.Segments()
	if len(segs) == 0 || segs[0].Name() != "MSH" {
		return nil, fmt.Errorf("%w: no MSH segment", ErrUnsupportedMessage)
	}
	msh := segs[0]
	code := clean(msh.Field(9).Component(1))
	switch code {
	case "ORU":
	case "MDM":
	default:
		return nil, fmt.Errorf("%w: MSH-9 %q (want ORU or MDM)", ErrUnsupportedMessage, code)
	}
	b := &builder{
		m:         m,
		rel:       rel,
		opts:      opts,
		loc:       opts.Location,
		controlID: clean(msh.Field(10).Value()),
		scope:     clean(msh.Field(3).Component(1)) + "^" + clean(msh.Field(4).Component(1)),
		isMDM:     code == "MDM",
		usedKeys:  map[string]int{},
	}
	if b.loc == nil {
		b.loc = time.UTC
	}
	if err := b.group(segs[1:]); err != nil {
		return nil, err
	}
	return b, nil
}

// group walks the segments into orders. It follows the ORU_R01 structure
// (PID, ORC, OBR, NTE, OBX, NTE, SPM, OBX) and the MDM structure (TXA, OBX),
// tolerating what senders commonly get wrong.
func (b *builder) group(segs []*hl7.Segment) error {
	var (
		cur        *order
		pendingORC *hl7.Segment
		txa        *hl7.Segment
		lastOBX    *obxEntry
		inSpecimen bool
		pids       int
		obrs, obxs int
	)
	for _, s := range segs {
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
			cur = &order{obr: s, orc: pendingORC, txa: txa, pos: obrs}
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
				cur = &order{txa: txa, orc: pendingORC, pos: 1}
				b.orders = append(b.orders, cur)
			}
			lastOBX = &obxEntry{seg: s, pos: obxs}
			cur.obxs = append(cur.obxs, lastOBX)
		case "NTE":
			text := noteText(s)
			switch {
			case inSpecimen:
			case lastOBX != nil:
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
	// The Patient comes first: the resource every subject reference names,
	// with the identifiers the portal knows the patient by.
	pat, patID := b.patient()
	patEntry := entryFor(&bcr.ContainedResource{OneofResource: &bcr.ContainedResource_Patient{Patient: pat}}, "Patient", b.newID("Patient", patID))
	patEntry.Request.Url.Value = "Patient/" + patID
	entries := []*bcr.Bundle_Entry{patEntry}
	var reports []*d4.Reference
	var reportKeys []string
	for _, o := range b.orders {
		dr, obs, key, err := b.mapOrder(o)
		if err != nil {
			return nil, err
		}
		entries = append(entries, entryFor(&bcr.ContainedResource{OneofResource: &bcr.ContainedResource_DiagnosticReport{DiagnosticReport: dr.res}}, "DiagnosticReport", dr.id))
		for _, ob := range obs {
			entries = append(entries, entryFor(&bcr.ContainedResource{OneofResource: &bcr.ContainedResource_Observation{Observation: ob.res}}, "Observation", ob.id))
		}
		reports = append(reports, refTo(dr.id))
		reportKeys = append(reportKeys, key)
	}
	provKey := strings.Join([]string{
		b.scope, b.controlID, b.rel.HoldID, b.rel.Reason,
		b.rel.At.UTC().Format(time.RFC3339Nano), strings.Join(reportKeys, ","),
	}, "|")
	prov := b.provenance(provKey, reports)
	entries = append(entries, entryFor(&bcr.ContainedResource{OneofResource: &bcr.ContainedResource_Provenance{Provenance: prov.res}}, "Provenance", prov.id))

	bid := b.newID("Bundle", provKey)
	return &bcr.Bundle{
		Id: &d4.Id{Value: bid.id},
		Identifier: &d4.Identifier{
			System: &d4.Uri{Value: "urn:ietf:rfc:3986"},
			Value:  &d4.String{Value: "urn:uuid:" + bid.uuid},
		},
		Type:      &bcr.Bundle_TypeCode{Value: c4.BundleTypeCode_TRANSACTION},
		Timestamp: instantOf(b.rel.At),
		Entry:     entries,
	}, nil
}

// entryFor wraps a resource as a transaction entry: fullUrl urn:uuid, PUT to
// its id (an idempotent create-or-update).
func entryFor(cr *bcr.ContainedResource, typ string, id rid) *bcr.Bundle_Entry {
	// One allocation for the entry and its elements.
	a := &struct {
		entry   bcr.Bundle_Entry
		fullURL d4.Uri
		req     bcr.Bundle_Entry_Request
		method  bcr.Bundle_Entry_Request_MethodCode
		url     d4.Uri
	}{}
	a.fullURL.Value = id.urn
	a.method.Value = c4.HTTPVerbCode_PUT
	a.url.Value = typ + "/" + id.id
	a.req.Method, a.req.Url = &a.method, &a.url
	a.entry.FullUrl, a.entry.Resource, a.entry.Request = &a.fullURL, cr, &a.req
	return &a.entry
}
