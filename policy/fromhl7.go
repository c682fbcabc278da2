package policy

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/resultgate/resultgate/hl7"
)

// ErrNilMessage is returned by FromHL7 for a nil message.
var ErrNilMessage = errors.New("policy: nil HL7 message")

// FromHL7 builds the policy's view of a parsed result message. It groups the
// message with the ORU^R01 rules (hl7.Message.Group, which also serves ORF,
// OUL and MDM messages that carry OBX), reads PID-3 and PID-15, every order
// (ORC/OBR with its NTE, OBX with their NTE, and OBX under SPM), and every
// DG1. Times without a UTC offset are read in loc (the sender's zone; UTC when
// nil). An unparseable OBR-22 leaves FinalizedAt zero, so the decision falls
// back to the receipt time and says so. ReceivedAt and Jurisdiction are left
// for the caller.
func FromHL7(m *hl7.Message, loc *time.Location) (*Report, error) {
	if m == nil {
		return nil, ErrNilMessage
	}
	if loc == nil {
		loc = time.UTC
	}
	r := &Report{ControlID: m.ControlID()}
	g := m.Group()
	for pi := range g.Patients {
		p := &g.Patients[pi]
		if p.PID != nil && r.PatientID == "" {
			pid := p.Patient()
			if id, ok := pid.Identifier(""); ok {
				r.PatientID = id.ID
				if a := id.AssigningAuthority.String(); a != "" {
					r.PatientID += "^^^" + a
				}
			}
			r.Language = pid.PrimaryLanguage.Code
		}
		for oi := range p.Orders {
			r.Orders = append(r.Orders, fromOrder(&p.Orders[oi], loc))
		}
	}
	if r.PatientID == "" {
		if pid, ok := m.PID(); ok {
			if id, ok := pid.Identifier(""); ok {
				r.PatientID = id.ID
				if a := id.AssigningAuthority.String(); a != "" {
					r.PatientID += "^^^" + a
				}
			}
			r.Language = pid.PrimaryLanguage.Code
		}
	}
	for _, s := range m.All("DG1") {
		d := hl7.ReadDG1(s)
		if d.Code.IsZero() {
			continue
		}
		r.Diagnoses = append(r.Diagnoses, fromCWE(d.Code, segLoc(s, "DG1-3")))
	}
	return r, nil
}

func segLoc(s *hl7.Segment, field string) Location {
	if s == nil {
		return Location{}
	}
	return Location{Segment: s.Name(), Occurrence: s.Occurrence(), Field: field}
}

// fromCWE converts a coded element and its alternates.
func fromCWE(c hl7.CWE, loc Location) Coded {
	cd := Coded{Code: c.Code, Text: c.Text, System: c.System, Loc: loc}
	if c.Text == "" && c.OriginalText != "" {
		cd.Text = c.OriginalText
	}
	if c.AltCode != "" || c.AltText != "" {
		l := loc
		l.Field = loc.Field + ".4"
		cd.Alt = append(cd.Alt, Coded{Code: c.AltCode, Text: c.AltText, System: c.AltSystem, Loc: l})
	}
	if c.SecondAltCode != "" || c.SecondAltText != "" {
		l := loc
		l.Field = loc.Field + ".10"
		cd.Alt = append(cd.Alt, Coded{Code: c.SecondAltCode, Text: c.SecondAltText, System: c.SecondAltSystem, Loc: l})
	}
	return cd
}

func parseTS(ts hl7.TS, loc *time.Location) time.Time {
	if ts.IsZero() {
		return time.Time{}
	}
	t, err := hl7.ParseTime(string(ts), loc)
	if err != nil {
		return time.Time{}
	}
	return t
}

func fromOrder(og *hl7.OrderGroup, loc *time.Location) Order {
	var o Order
	orc := og.Common()
	if og.OBR != nil {
		obr := og.Request()
		o.Loc = segLoc(og.OBR, "")
		o.PlacerID = obr.PlacerOrderNumber.ID
		o.FillerID = obr.FillerOrderNumber.ID
		o.Service = fromCWE(obr.UniversalServiceID, segLoc(og.OBR, "OBR-4"))
		o.ServiceSection = strings.TrimSpace(obr.DiagnosticServiceSection)
		o.ServiceSectionLoc = segLoc(og.OBR, "OBR-24")
		o.ResultStatus = obr.ResultStatus
		o.ObservedAt = parseTS(obr.ObservationDateTime, loc)
		o.FinalizedAt = parseTS(obr.ResultsReportedAt, loc)
		if len(obr.OrderingProviders) > 0 {
			o.OrderingProvider = obr.OrderingProviders[0].ID
		}
	}
	if orc.Seg != nil {
		if o.PlacerID == "" {
			o.PlacerID = orc.PlacerOrderNumber.ID
		}
		if o.FillerID == "" {
			o.FillerID = orc.FillerOrderNumber.ID
		}
		if len(orc.OrderingProviders) > 0 && orc.OrderingProviders[0].ID != "" {
			o.OrderingProvider = orc.OrderingProviders[0].ID
		}
		if o.Loc.Segment == "" {
			o.Loc = segLoc(orc.Seg, "")
		}
	}
	for _, n := range og.NTEs {
		if t := hl7.ReadNTE(n).Comment; t != "" {
			o.Notes = append(o.Notes, Text{Value: t, Loc: segLoc(n, "NTE-3")})
		}
	}
	for i := range og.Observations {
		ob := &og.Observations[i]
		o.Observations = append(o.Observations, fromOBX(ob.OBX, ob.NTEs, loc))
	}
	for i := range og.Specimens {
		for _, s := range og.Specimens[i].OBXs {
			o.Observations = append(o.Observations, fromOBX(s, nil, loc))
		}
	}
	return o
}

// codedTypes are OBX-2 value types read as coded values.
var codedTypes = map[string]bool{"CE": true, "CWE": true, "CNE": true, "CF": true, "CV": true}

func fromOBX(s *hl7.Segment, ntes []*hl7.Segment, loc *time.Location) Observation {
	x := hl7.ReadOBX(s)
	ob := Observation{
		SetID:           x.SetID,
		ValueType:       x.ValueType,
		ID:              fromCWE(x.Identifier, segLoc(s, "OBX-3")),
		Status:          x.ResultStatus,
		ObservedAt:      parseTS(x.ObservationDateTime, loc),
		ReleaseCategory: x.ReleaseCategory,
		AbnormalFlags:   x.AbnormalFlags,
		Loc:             segLoc(s, ""),
	}
	vt := strings.ToUpper(strings.TrimSpace(x.ValueType))
	switch {
	case codedTypes[vt]:
		for i, c := range x.Coded() {
			if c.IsZero() {
				continue
			}
			field := "OBX-5"
			if i > 0 {
				field = "OBX-5(" + strconv.Itoa(i+1) + ")"
			}
			ob.Codes = append(ob.Codes, fromCWE(c, segLoc(s, field)))
			if c.OriginalText != "" && c.Text != "" && c.OriginalText != c.Text {
				ob.Texts = append(ob.Texts, Text{Value: c.OriginalText, Loc: segLoc(s, field+".9")})
			}
		}
	case x.IsText():
		if t := x.Text(); strings.TrimSpace(t) != "" {
			ob.Texts = append(ob.Texts, Text{Value: t, Loc: segLoc(s, "OBX-5")})
		}
	}
	for _, n := range ntes {
		if t := hl7.ReadNTE(n).Comment; t != "" {
			ob.Notes = append(ob.Notes, Text{Value: t, Loc: segLoc(n, "NTE-3")})
		}
	}
	return ob
}
