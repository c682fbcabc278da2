package fhirmap

import (
	"strings"

	c4 "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	d4 "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	provpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/provenance_go_proto"
)

type provOut struct {
	res *provpb.Provenance
	id  rid
}

// systemActor is the agent of a release nobody performed by hand.
const systemActor = "resultgate"

// provAlloc is the Provenance with the elements it can have besides its
// reasons: one per builder, as a Bundle has one Provenance.
type provAlloc struct {
	p          provpb.Provenance
	id         d4.Id
	occ        provpb.Provenance_OccurredX
	occDT      provpb.Provenance_OccurredX_DateTime
	occurred   d4.DateTime
	recorded   d4.Instant
	activity   d4.CodeableConcept
	actCodings [1]*d4.Coding
	actCoding  codingAlloc
	actText    d4.String
	agents     [1]*provpb.Provenance_Agent
	agent      provpb.Provenance_Agent
	who        d4.Reference
	whoIdent   d4.Identifier
	whoSystem  d4.Uri
	whoValue   d4.String
	whoDisplay d4.String
	roles      [1]*d4.CodeableConcept
	role       d4.CodeableConcept
	roleText   d4.String
	roleCoding [1]*d4.Coding
	entities   [2]*provpb.Provenance_Entity
	entity     [2]entityAlloc
	exts       [2]*d4.Extension
	ext        [2]extensionAlloc
}

// entityAlloc is a Provenance.entity naming its source by identifier.
type entityAlloc struct {
	e       provpb.Provenance_Entity
	role    provpb.Provenance_Entity_RoleCode
	what    d4.Reference
	ident   d4.Identifier
	system  d4.Uri
	value   d4.String
	display d4.String
}

// extensionAlloc is an extension with a code or string value.
type extensionAlloc struct {
	x     d4.Extension
	url   d4.Uri
	v     d4.Extension_ValueX
	code  d4.Extension_ValueX_Code
	codeV d4.Code
	str   d4.Extension_ValueX_StringValue
	strV  d4.String
}

// source sets en to a source entity: the identifier system and value, and
// the display.
func (en *entityAlloc) source(system, value, display string) *provpb.Provenance_Entity {
	en.role.Value = c4.ProvenanceEntityRoleCode_SOURCE
	en.system.Value, en.value.Value, en.display.Value = system, value, display
	en.ident.System, en.ident.Value = &en.system, &en.value
	en.what.Identifier, en.what.Display = &en.ident, &en.display
	en.e.Role, en.e.What = &en.role, &en.what
	return &en.e
}

// provenance records how (activity: the release path), why (reason: the hold's
// lawful bases, or none for an immediate release), by whom (agent) and when
// (recorded/occurred: Release.At) the reports were released, and from what
// (entity: the hold record and the HL7 message).
func (b *builder) provenance(key string, targets []*d4.Reference) provOut {
	r := b.rel
	a := &b.ar
	id := b.newID("Provenance", key)
	x := &b.prov
	p := &x.p
	x.id.Value = id.id
	p.Id, p.Target = &x.id, targets
	dateTimeOfGo(&x.occurred, r.At)
	x.occDT.DateTime = &x.occurred
	x.occ.Choice = &x.occDT
	p.Occurred = &x.occ
	p.Recorded = instantOf(&x.recorded, r.At)
	display := reasonDisplay[r.Reason]
	x.actCoding.system.Value, x.actCoding.code.Value, x.actCoding.display.Value = SystemReleaseReason, r.Reason, display
	x.actCoding.coding.System, x.actCoding.coding.Code, x.actCoding.coding.Display = &x.actCoding.system, &x.actCoding.code, &x.actCoding.display
	x.actCodings[0] = &x.actCoding.coding
	x.actText.Value = display
	x.activity.Coding, x.activity.Text = x.actCodings[:], &x.actText
	p.Activity = &x.activity

	for _, basis := range r.Bases {
		c := code(basis)
		if c == "" {
			continue
		}
		if p.Reason == nil {
			p.Reason = a.conceptPtrs.ptrs(len(r.Bases))
		}
		cc := a.concepts.get()
		cc.Coding = a.codingPtrs.take(1)
		cc.Coding[0] = a.newCoding(SystemHoldBasis, c, "")
		cc.Text = a.newString(clean(basis))
		p.Reason = append(p.Reason, cc)
	}

	actor := clean(r.Actor)
	if actor != "" && actor != systemActor {
		x.whoSystem.Value, x.whoValue.Value = SystemActor, actor
		x.whoIdent.System, x.whoIdent.Value = &x.whoSystem, &x.whoValue
		x.who.Identifier = &x.whoIdent
		x.whoDisplay.Value = actor
	} else {
		x.whoDisplay.Value = systemActor
	}
	x.who.Display = &x.whoDisplay
	x.agent.Type = a.conceptCode(SystemProvParticType, "performer", "Performer")
	x.agent.Who = &x.who
	if role := clean(r.ActorRole); role != "" {
		x.roleText.Value = role
		x.role.Text = &x.roleText
		if c := code(strings.ToLower(role)); c != "" {
			x.roleCoding[0] = a.newCoding(SystemActorRole, c, "")
			x.role.Coding = x.roleCoding[:]
		}
		x.roles[0] = &x.role
		x.agent.Role = x.roles[:]
	}
	x.agents[0] = &x.agent
	p.Agent = x.agents[:]

	n := 0
	if h := clean(r.HoldID); h != "" {
		x.entities[n] = x.entity[n].source(SystemHoldID, h, "resultgate hold")
		n++
	}
	if b.controlID != "" {
		x.entities[n] = x.entity[n].source(SystemMessageControl, b.controlID, "HL7 v2 message")
		n++
	}
	if n > 0 {
		p.Entity = x.entities[:n:n]
	}
	n = 0
	if r.Notify != "" {
		e := &x.ext[n]
		e.url.Value, e.codeV.Value = ExtNotification, r.Notify
		e.code.Code = &e.codeV
		e.v.Choice = &e.code
		e.x.Url, e.x.Value = &e.url, &e.v
		x.exts[n] = &e.x
		n++
	}
	if note := strings.TrimSpace(text(r.Note)); note != "" {
		e := &x.ext[n]
		e.url.Value, e.strV.Value = ExtPatientNote, note
		e.str.StringValue = &e.strV
		e.v.Choice = &e.str
		e.x.Url, e.x.Value = &e.url, &e.v
		x.exts[n] = &e.x
		n++
	}
	if n > 0 {
		p.Extension = x.exts[:n:n]
	}
	return provOut{res: p, id: id}
}
