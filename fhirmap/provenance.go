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

// provenance records how (activity: the release path), why (reason: the hold's
// lawful bases, or none for an immediate release), by whom (agent) and when
// (recorded/occurred: Release.At) the reports were released, and from what
// (entity: the hold record and the HL7 message).
func (b *builder) provenance(key string, targets []*d4.Reference) provOut {
	r := b.rel
	id := b.newID("Provenance", key)
	p := &provpb.Provenance{
		Id:       &d4.Id{Value: id.id},
		Target:   targets,
		Occurred: &provpb.Provenance_OccurredX{Choice: &provpb.Provenance_OccurredX_DateTime{DateTime: dateTimeOfGo(r.At)}},
		Recorded: instantOf(r.At),
		Activity: &d4.CodeableConcept{
			Coding: []*d4.Coding{{
				System:  &d4.Uri{Value: SystemReleaseReason},
				Code:    &d4.Code{Value: r.Reason},
				Display: &d4.String{Value: reasonDisplay[r.Reason]},
			}},
			Text: &d4.String{Value: reasonDisplay[r.Reason]},
		},
	}
	for _, basis := range r.Bases {
		c := code(basis)
		if c == "" {
			continue
		}
		p.Reason = append(p.Reason, &d4.CodeableConcept{
			Coding: []*d4.Coding{{System: &d4.Uri{Value: SystemHoldBasis}, Code: &d4.Code{Value: c}}},
			Text:   &d4.String{Value: clean(basis)},
		})
	}

	actor := clean(r.Actor)
	who := &d4.Reference{Display: &d4.String{Value: systemActor}}
	if actor != "" && actor != systemActor {
		who = &d4.Reference{
			Identifier: &d4.Identifier{System: &d4.Uri{Value: SystemActor}, Value: &d4.String{Value: actor}},
			Display:    &d4.String{Value: actor},
		}
	}
	agent := &provpb.Provenance_Agent{
		Type: b.ar.conceptCode(SystemProvParticType, "performer", "Performer"),
		Who:  who,
	}
	if role := clean(r.ActorRole); role != "" {
		cc := &d4.CodeableConcept{Text: &d4.String{Value: role}}
		if c := code(strings.ToLower(role)); c != "" {
			cc.Coding = []*d4.Coding{{System: &d4.Uri{Value: SystemActorRole}, Code: &d4.Code{Value: c}}}
		}
		agent.Role = []*d4.CodeableConcept{cc}
	}
	p.Agent = []*provpb.Provenance_Agent{agent}

	if h := clean(r.HoldID); h != "" {
		p.Entity = append(p.Entity, &provpb.Provenance_Entity{
			Role: &provpb.Provenance_Entity_RoleCode{Value: c4.ProvenanceEntityRoleCode_SOURCE},
			What: &d4.Reference{
				Identifier: &d4.Identifier{System: &d4.Uri{Value: SystemHoldID}, Value: &d4.String{Value: h}},
				Display:    &d4.String{Value: "resultgate hold"},
			},
		})
	}
	if b.controlID != "" {
		p.Entity = append(p.Entity, &provpb.Provenance_Entity{
			Role: &provpb.Provenance_Entity_RoleCode{Value: c4.ProvenanceEntityRoleCode_SOURCE},
			What: &d4.Reference{
				Identifier: &d4.Identifier{System: &d4.Uri{Value: SystemMessageControl}, Value: &d4.String{Value: b.controlID}},
				Display:    &d4.String{Value: "HL7 v2 message"},
			},
		})
	}
	if r.Notify != "" {
		p.Extension = append(p.Extension, &d4.Extension{
			Url:   &d4.Uri{Value: ExtNotification},
			Value: &d4.Extension_ValueX{Choice: &d4.Extension_ValueX_Code{Code: &d4.Code{Value: r.Notify}}},
		})
	}
	if note := strings.TrimSpace(text(r.Note)); note != "" {
		p.Extension = append(p.Extension, &d4.Extension{
			Url:   &d4.Uri{Value: ExtPatientNote},
			Value: &d4.Extension_ValueX{Choice: &d4.Extension_ValueX_StringValue{StringValue: &d4.String{Value: note}}},
		})
	}
	return provOut{res: p, id: id}
}
