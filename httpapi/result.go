package httpapi

import (
	"github.com/resultgate/resultgate/hl7"
)

// resultDoc is a held result as a clinician reads it: the orders and their
// observations, unescaped, each with the segment occurrence that the tags'
// evidence points at (so a page can highlight the matched text).
type resultDoc struct {
	ControlID   string     `json:"control_id"`
	MessageType string     `json:"message_type"`
	Patient     patientDoc `json:"patient"`
	Orders      []orderDoc `json:"orders"`
}

type patientDoc struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	DOB  string `json:"dob,omitempty"`
	// Born is DOB as people read it ("5 May 1965").
	Born string `json:"born,omitempty"`
	Sex  string `json:"sex,omitempty"`
}

type orderDoc struct {
	Occurrence   int      `json:"occurrence"` // OBR occurrence
	PlacerID     string   `json:"placer_id,omitempty"`
	FillerID     string   `json:"filler_id,omitempty"`
	Service      string   `json:"service"`
	Section      string   `json:"section,omitempty"`
	Status       string   `json:"status,omitempty"`
	Observations []obsDoc `json:"observations"`
	Notes        []string `json:"notes,omitempty"`
}

type obsDoc struct {
	Occurrence int      `json:"occurrence"` // OBX occurrence
	Type       string   `json:"type"`
	Code       string   `json:"code"`
	Name       string   `json:"name"`
	Values     []string `json:"values"`
	Units      string   `json:"units,omitempty"`
	Range      string   `json:"range,omitempty"`
	Flags      string   `json:"flags,omitempty"`
	Status     string   `json:"status,omitempty"`
	Notes      []string `json:"notes,omitempty"`
}

// resultView builds the clinician's view of m. Patient identifiers appear here
// because a clinician must match the result to the patient; the API answers it
// only to authorised readers and audits every read.
func resultView(m *hl7.Message) *resultDoc {
	code, ev, _ := m.Type()
	d := &resultDoc{ControlID: m.ControlID(), MessageType: code + "^" + ev, Orders: []orderDoc{}}
	if pid := m.First("PID"); pid != nil {
		d.Patient = patientDoc{
			ID:   pid.Field(3).Component(1),
			Name: joinNonEmpty(pid.Field(5).Component(2), pid.Field(5).Component(1)),
			DOB:  pid.Field(7).Component(1), Sex: pid.Field(8).Value(),
		}
		d.Patient.Born = formatDOB(d.Patient.DOB)
	}
	var cur *orderDoc
	var obs *obsDoc
	for _, s := range m.Segments() {
		switch s.Name() {
		case "OBR":
			d.Orders = append(d.Orders, orderDoc{
				Occurrence: s.Occurrence(), PlacerID: s.Field(2).Component(1), FillerID: s.Field(3).Component(1),
				Service: joinNonEmpty(s.Field(4).Component(2), "("+s.Field(4).Component(1)+")"),
				Section: s.Field(24).Value(), Status: s.Field(25).Value(), Observations: []obsDoc{},
			})
			cur, obs = &d.Orders[len(d.Orders)-1], nil
		case "OBX":
			if cur == nil {
				d.Orders = append(d.Orders, orderDoc{Service: "(no order)", Observations: []obsDoc{}})
				cur = &d.Orders[len(d.Orders)-1]
			}
			f5 := s.Field(5)
			vt := s.Field(2).Value()
			coded := vt == "CWE" || vt == "CE" || vt == "CNE"
			vals := make([]string, 0, f5.Reps())
			for _, rep := range f5.AllReps() {
				v := rep.Value()
				if coded {
					v = joinNonEmpty(rep.Component(2), "("+rep.Component(1)+")")
				}
				vals = append(vals, v)
			}
			cur.Observations = append(cur.Observations, obsDoc{
				Occurrence: s.Occurrence(), Type: s.Field(2).Value(), Code: s.Field(3).Component(1),
				Name: s.Field(3).Component(2), Values: vals, Units: s.Field(6).Component(1),
				Range: s.Field(7).Value(), Flags: s.Field(8).Value(), Status: s.Field(11).Value(),
			})
			obs = &cur.Observations[len(cur.Observations)-1]
		case "NTE":
			text := s.Field(3).Value()
			switch {
			case obs != nil:
				obs.Notes = append(obs.Notes, text)
			case cur != nil:
				cur.Notes = append(cur.Notes, text)
			}
		}
	}
	return d
}

func joinNonEmpty(a, b string) string {
	switch {
	case a == "" || a == "()":
		return b
	case b == "" || b == "()":
		return a
	}
	return a + " " + b
}
