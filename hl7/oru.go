package hl7

import "fmt"

// ORU is an observation result message grouped as the ORU^R01 structure of
// chapter 7 defines it:
//
//	v2.3–v2.5.1: MSH [SFT] { [PID [PD1] [NTE] [NK1] [PV1 [PV2]]]
//	             { [ORC] OBR [NTE] [TQ1 [TQ2]] [CTD] { [OBX [NTE]] } [FT1] [CTI] [SPM [OBX]] } } [DSC]
//	v2.7+:       the same with PRT after PID, PV1, OBR and OBX, ARV after NK1,
//	             DEVICE groups, and SAC after SPM.
//
// The grouping is tolerant: a missing ORC is fine, an OBX before any OBR gets an
// order group without OBR, and segments the grammar does not place (Z-segments,
// stray segments) are kept in the Extra list of the group they follow.
type ORU struct {
	MSH      *Segment
	SFTs     []*Segment
	Patients []PatientGroup
	DSC      *Segment
	Extra    []*Segment // segments before the first patient or order that fit nowhere
}

// PatientGroup is one PATIENT_RESULT: the patient (PID may be nil when the
// message has none) and its orders.
type PatientGroup struct {
	PID    *Segment
	PD1    *Segment
	PRTs   []*Segment
	NTEs   []*Segment
	NK1s   []*Segment
	PV1    *Segment
	PV2    *Segment
	Others []*Segment // ARV, device and visit PRT segments, and any other segment in the patient part
	Orders []OrderGroup
	Extra  []*Segment
}

// OrderGroup is one ORDER_OBSERVATION: ORC (may be nil), OBR (nil when the sender
// sent OBX without OBR), notes, timing, observations and specimens.
type OrderGroup struct {
	ORC          *Segment
	OBR          *Segment
	NTEs         []*Segment
	PRTs         []*Segment
	Timing       []*Segment // TQ1, TQ2
	CTD          *Segment
	Observations []ObservationGroup
	FT1s         []*Segment
	CTIs         []*Segment
	Specimens    []SpecimenGroup
	SPMs         []*Segment // the SPM of each specimen group, for callers that need only those
	Extra        []*Segment
}

// ObservationGroup is one OBSERVATION: an OBX and the NTE (and v2.7 PRT) after it.
type ObservationGroup struct {
	OBX   *Segment
	NTEs  []*Segment
	PRTs  []*Segment
	Extra []*Segment
}

// SpecimenGroup is one SPECIMEN: SPM, its containers (SAC, v2.7+) and the OBX
// about the specimen.
type SpecimenGroup struct {
	SPM   *Segment
	SACs  []*Segment
	OBXs  []*Segment
	Extra []*Segment
}

// Request returns the typed OBR (zero with a nil Seg when there is none).
func (g *OrderGroup) Request() OBR {
	if g.OBR == nil {
		return OBR{}
	}
	return ReadOBR(g.OBR)
}

// Common returns the typed ORC (zero with a nil Seg when there is none).
func (g *OrderGroup) Common() ORC {
	if g.ORC == nil {
		return ORC{}
	}
	return ReadORC(g.ORC)
}

// Notes returns the order's NTEs, typed.
func (g *OrderGroup) Notes() []NTE { return readNTEs(g.NTEs) }

// Result returns the typed OBX.
func (g *ObservationGroup) Result() OBX { return ReadOBX(g.OBX) }

// Notes returns the observation's NTEs, typed.
func (g *ObservationGroup) Notes() []NTE { return readNTEs(g.NTEs) }

// Specimen returns the typed SPM.
func (g *SpecimenGroup) Specimen() SPM { return ReadSPM(g.SPM) }

// Patient returns the typed PID (zero with a nil Seg when there is none).
func (g *PatientGroup) Patient() PID {
	if g.PID == nil {
		return PID{}
	}
	return ReadPID(g.PID)
}

// Visit returns the typed PV1 (zero with a nil Seg when there is none).
func (g *PatientGroup) Visit() PV1 {
	if g.PV1 == nil {
		return PV1{}
	}
	return ReadPV1(g.PV1)
}

func readNTEs(segs []*Segment) []NTE {
	out := make([]NTE, len(segs))
	for i, s := range segs {
		out[i] = ReadNTE(s)
	}
	return out
}

// ORU groups the message as ORU^R01 (also used for R30–R32, whose result part has
// the same shape). It fails with ErrNotORU when MSH-9.1 is not "ORU"; use Group
// to group another result-bearing message (ORF, OUL, MDM with OBX) anyway.
func (m *Message) ORU() (*ORU, error) {
	if code, ev, _ := m.Type(); code != "ORU" {
		return nil, fmt.Errorf("%w: MSH-9 is %s^%s", ErrNotORU, code, ev)
	}
	return m.Group(), nil
}

// Group groups any message's segments with the ORU^R01 rules (see ORU).
func (m *Message) Group() *ORU {
	o := &ORU{MSH: &m.segs[0]}
	var (
		pat  *PatientGroup
		ord  *OrderGroup
		obs  *ObservationGroup
		spm  *SpecimenGroup
		ctx  int // where NTE/PRT/unknown segments go
		done bool
	)
	const (
		ctxTop = iota
		ctxPatient
		ctxVisit
		ctxOrder
		ctxObs
		ctxSpecimen
	)
	newPatient := func(pid *Segment) {
		o.Patients = append(o.Patients, PatientGroup{PID: pid})
		pat = &o.Patients[len(o.Patients)-1]
		ord, obs, spm = nil, nil, nil
	}
	needPatient := func() {
		if pat == nil {
			newPatient(nil)
		}
	}
	newOrder := func() {
		needPatient()
		pat.Orders = append(pat.Orders, OrderGroup{})
		ord = &pat.Orders[len(pat.Orders)-1]
		obs, spm = nil, nil
		ctx = ctxOrder
	}
	for i := 1; i < len(m.segs); i++ {
		s := &m.segs[i]
		if done {
			o.Extra = append(o.Extra, s)
			continue
		}
		name := s.Name()
		switch name {
		case "SFT":
			if pat == nil {
				o.SFTs = append(o.SFTs, s)
				continue
			}
		case "PID":
			newPatient(s)
			ctx = ctxPatient
			continue
		case "PD1", "NK1", "ARV":
			if pat != nil && ord == nil {
				if name == "PD1" && pat.PD1 == nil {
					pat.PD1 = s
				} else if name == "NK1" {
					pat.NK1s = append(pat.NK1s, s)
				} else {
					pat.Others = append(pat.Others, s)
				}
				continue
			}
		case "PV1":
			if pat != nil && ord == nil && pat.PV1 == nil {
				pat.PV1 = s
				ctx = ctxVisit
				continue
			}
		case "PV2":
			if pat != nil && ord == nil && pat.PV2 == nil {
				pat.PV2 = s
				continue
			}
		case "ORC":
			newOrder()
			ord.ORC = s
			continue
		case "OBR":
			if ord == nil || ord.OBR != nil || len(ord.Observations) > 0 {
				newOrder()
			}
			ord.OBR = s
			ctx = ctxOrder
			continue
		case "TQ1", "TQ2":
			if ord != nil && len(ord.Observations) == 0 {
				ord.Timing = append(ord.Timing, s)
				continue
			}
		case "CTD":
			if ord != nil && ord.CTD == nil {
				ord.CTD = s
				continue
			}
		case "OBX":
			if spm != nil && ctx == ctxSpecimen {
				spm.OBXs = append(spm.OBXs, s)
				continue
			}
			if ord == nil {
				newOrder()
			}
			ord.Observations = append(ord.Observations, ObservationGroup{OBX: s})
			obs = &ord.Observations[len(ord.Observations)-1]
			ctx = ctxObs
			continue
		case "FT1":
			if ord != nil {
				ord.FT1s = append(ord.FT1s, s)
				continue
			}
		case "CTI":
			if ord != nil {
				ord.CTIs = append(ord.CTIs, s)
				continue
			}
		case "SPM":
			if ord == nil {
				newOrder()
			}
			ord.Specimens = append(ord.Specimens, SpecimenGroup{SPM: s})
			ord.SPMs = append(ord.SPMs, s)
			spm = &ord.Specimens[len(ord.Specimens)-1]
			ctx = ctxSpecimen
			continue
		case "SAC":
			if spm != nil && ctx == ctxSpecimen {
				spm.SACs = append(spm.SACs, s)
				continue
			}
		case "DSC":
			o.DSC = s
			done = true
			continue
		case "NTE", "PRT":
			// attach adds s to the open group's notes or participations.
			attach := func(ntes, prts *[]*Segment) {
				if name == "NTE" {
					*ntes = append(*ntes, s)
				} else {
					*prts = append(*prts, s)
				}
			}
			switch ctx {
			case ctxObs:
				attach(&obs.NTEs, &obs.PRTs)
				continue
			case ctxOrder:
				attach(&ord.NTEs, &ord.PRTs)
				continue
			case ctxPatient:
				attach(&pat.NTEs, &pat.PRTs)
				continue
			case ctxVisit:
				pat.Others = append(pat.Others, s)
				continue
			}
		}
		// Not placed by the grammar: keep it with the innermost open group.
		switch {
		case ctx == ctxSpecimen && spm != nil:
			spm.Extra = append(spm.Extra, s)
		case ctx == ctxObs && obs != nil:
			obs.Extra = append(obs.Extra, s)
		case ord != nil:
			ord.Extra = append(ord.Extra, s)
		case pat != nil:
			pat.Extra = append(pat.Extra, s)
		default:
			o.Extra = append(o.Extra, s)
		}
	}
	return o
}

// Orders returns every order group of every patient, in message order.
func (o *ORU) Orders() []*OrderGroup {
	var out []*OrderGroup
	for i := range o.Patients {
		for j := range o.Patients[i].Orders {
			out = append(out, &o.Patients[i].Orders[j])
		}
	}
	return out
}
