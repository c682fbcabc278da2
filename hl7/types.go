package hl7

import "time"

// HD is a hierarchic designator (HD): namespace ID, universal ID and its type.
type HD struct {
	NamespaceID     string `json:"namespace_id,omitempty"`
	UniversalID     string `json:"universal_id,omitempty"`
	UniversalIDType string `json:"universal_id_type,omitempty"`
}

// IsZero reports whether every part is empty.
func (h HD) IsZero() bool { return h == HD{} }

// String returns the namespace ID, or the universal ID when there is none.
func (h HD) String() string {
	if h.NamespaceID != "" {
		return h.NamespaceID
	}
	return h.UniversalID
}

// hdFromComponents reads an HD that is a whole field repetition (components).
func hdFromComponents(f Field) HD {
	return HD{NamespaceID: f.Component(1), UniversalID: f.Component(2), UniversalIDType: f.Component(3)}
}

// hdFromSubs reads an HD that is component c of f (subcomponents).
func hdFromSubs(f Field, c int) HD {
	return HD{NamespaceID: f.Sub(c, 1), UniversalID: f.Sub(c, 2), UniversalIDType: f.Sub(c, 3)}
}

// MessageType is MSH-9: message code, trigger event, message structure.
type MessageType struct {
	Code      string `json:"code"`
	Event     string `json:"event,omitempty"`
	Structure string `json:"structure,omitempty"`
}

// String returns "ORU^R01" (or "ORU^R01^ORU_R01" when the structure is given).
func (t MessageType) String() string {
	s := t.Code
	if t.Event != "" || t.Structure != "" {
		s += "^" + t.Event
	}
	if t.Structure != "" {
		s += "^" + t.Structure
	}
	return s
}

// CX is an extended composite ID (CX), as in PID-3.
type CX struct {
	ID                 string `json:"id"`
	CheckDigit         string `json:"check_digit,omitempty"`
	CheckDigitScheme   string `json:"check_digit_scheme,omitempty"`
	AssigningAuthority HD     `json:"assigning_authority,omitzero"`
	IdentifierType     string `json:"identifier_type,omitempty"` // table 0203: MR, PI, SS, ...
	AssigningFacility  HD     `json:"assigning_facility,omitzero"`
}

func cxFrom(f Field) CX {
	return CX{ID: f.Component(1), CheckDigit: f.Component(2), CheckDigitScheme: f.Component(3),
		AssigningAuthority: hdFromSubs(f, 4), IdentifierType: f.Component(5), AssigningFacility: hdFromSubs(f, 6)}
}

// XPN is an extended person name (XPN).
type XPN struct {
	Family   string `json:"family,omitempty"` // XPN-1.1 (surname)
	Given    string `json:"given,omitempty"`
	Middle   string `json:"middle,omitempty"` // second and further given names or initials
	Suffix   string `json:"suffix,omitempty"`
	Prefix   string `json:"prefix,omitempty"`
	Degree   string `json:"degree,omitempty"`
	NameType string `json:"name_type,omitempty"` // table 0200: L legal, D display, ...
}

func xpnFrom(f Field) XPN {
	return XPN{Family: f.Sub(1, 1), Given: f.Component(2), Middle: f.Component(3), Suffix: f.Component(4),
		Prefix: f.Component(5), Degree: f.Component(6), NameType: f.Component(7)}
}

// XCN is an extended composite ID number and name for persons (XCN), as in
// OBR-16 ordering provider.
type XCN struct {
	ID                 string `json:"id,omitempty"`
	Family             string `json:"family,omitempty"`
	Given              string `json:"given,omitempty"`
	Middle             string `json:"middle,omitempty"`
	Suffix             string `json:"suffix,omitempty"`
	Prefix             string `json:"prefix,omitempty"`
	Degree             string `json:"degree,omitempty"`
	AssigningAuthority HD     `json:"assigning_authority,omitzero"` // XCN-9
	NameType           string `json:"name_type,omitempty"`          // XCN-10
	IdentifierType     string `json:"identifier_type,omitempty"`    // XCN-13
}

// IsZero reports whether the XCN is empty.
func (x XCN) IsZero() bool { return x == XCN{} }

func xcnFrom(f Field) XCN {
	return XCN{ID: f.Component(1), Family: f.Sub(2, 1), Given: f.Component(3), Middle: f.Component(4),
		Suffix: f.Component(5), Prefix: f.Component(6), Degree: f.Component(7),
		AssigningAuthority: hdFromSubs(f, 9), NameType: f.Component(10), IdentifierType: f.Component(13)}
}

func xcnList(f Field) []XCN {
	var out []XCN
	for _, rep := range f.AllReps() {
		if x := xcnFrom(rep); !x.IsZero() {
			out = append(out, x)
		}
	}
	return out
}

// CWE is a coded element (CE, CWE, CNE): a triplet, an alternate triplet and, from
// v2.7, a second alternate triplet (components 10 to 12), plus original text.
type CWE struct {
	Code            string `json:"code,omitempty"`
	Text            string `json:"text,omitempty"`
	System          string `json:"system,omitempty"` // table 0396: LN, SCT, I10, L, 99zzz...
	AltCode         string `json:"alt_code,omitempty"`
	AltText         string `json:"alt_text,omitempty"`
	AltSystem       string `json:"alt_system,omitempty"`
	OriginalText    string `json:"original_text,omitempty"` // CWE-9
	SecondAltCode   string `json:"second_alt_code,omitempty"`
	SecondAltText   string `json:"second_alt_text,omitempty"`
	SecondAltSystem string `json:"second_alt_system,omitempty"`
}

// IsZero reports whether the CWE is empty.
func (c CWE) IsZero() bool { return c == CWE{} }

// BestText returns the first non-empty of text, original text, alternate text
// and second alternate text, else the code.
func (c CWE) BestText() string {
	for _, s := range []string{c.Text, c.OriginalText, c.AltText, c.SecondAltText, c.Code, c.AltCode} {
		if s != "" {
			return s
		}
	}
	return ""
}

func cweFrom(f Field) CWE {
	return CWE{Code: f.Component(1), Text: f.Component(2), System: f.Component(3),
		AltCode: f.Component(4), AltText: f.Component(5), AltSystem: f.Component(6),
		OriginalText: f.Component(9), SecondAltCode: f.Component(10), SecondAltText: f.Component(11),
		SecondAltSystem: f.Component(12)}
}

func cweList(f Field) []CWE {
	var out []CWE
	for _, rep := range f.AllReps() {
		if c := cweFrom(rep); !c.IsZero() {
			out = append(out, c)
		}
	}
	return out
}

// EI is an entity identifier (EI), as in ORC-2/OBR-2 placer order number.
type EI struct {
	ID              string `json:"id,omitempty"`
	NamespaceID     string `json:"namespace_id,omitempty"`
	UniversalID     string `json:"universal_id,omitempty"`
	UniversalIDType string `json:"universal_id_type,omitempty"`
}

// IsZero reports whether the EI is empty.
func (e EI) IsZero() bool { return e == EI{} }

func eiFrom(f Field) EI {
	return EI{ID: f.Component(1), NamespaceID: f.Component(2), UniversalID: f.Component(3), UniversalIDType: f.Component(4)}
}

// eiFromSubs reads an EI that is component c of f (as in EIP).
func eiFromSubs(f Field, c int) EI {
	return EI{ID: f.Sub(c, 1), NamespaceID: f.Sub(c, 2), UniversalID: f.Sub(c, 3), UniversalIDType: f.Sub(c, 4)}
}

// XAD is an extended address (XAD).
type XAD struct {
	Street      string `json:"street,omitempty"` // XAD-1.1
	Other       string `json:"other,omitempty"`
	City        string `json:"city,omitempty"`
	State       string `json:"state,omitempty"`
	PostalCode  string `json:"postal_code,omitempty"`
	Country     string `json:"country,omitempty"`
	AddressType string `json:"address_type,omitempty"`
}

// IsZero reports whether the address is empty.
func (a XAD) IsZero() bool { return a == XAD{} }

func xadFrom(f Field) XAD {
	return XAD{Street: f.Sub(1, 1), Other: f.Component(2), City: f.Component(3), State: f.Component(4),
		PostalCode: f.Component(5), Country: f.Component(6), AddressType: f.Component(7)}
}

// TS is an HL7 date/time value as written (DTM, or the first component of a
// v2.3–v2.5 TS), with a helper to read it.
type TS string

// Time parses the value with ParseTime; a value without a UTC offset is read in
// loc (time.UTC when loc is nil).
func (t TS) Time(loc *time.Location) (time.Time, error) { return ParseTime(string(t), loc) }

// IsZero reports whether the value is empty.
func (t TS) IsZero() bool { return t == "" }

func tsFrom(f Field) TS { return TS(f.Component(1)) }
