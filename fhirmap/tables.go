package fhirmap

import (
	c4 "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
)

// reportStatus maps OBR-25 (HL7 table 0123) to DiagnosticReport.status, after
// the v2-to-FHIR ConceptMap ResultStatus[Non-Queries]. Codes the IG leaves
// unmapped get the closest status (A, M, N); Y and Z are ErrResultStatus.
var reportStatus = map[string]c4.DiagnosticReportStatusCode_Value{
	"O": c4.DiagnosticReportStatusCode_REGISTERED,  // order received; specimen not yet received
	"I": c4.DiagnosticReportStatusCode_REGISTERED,  // specimen received, procedure incomplete
	"S": c4.DiagnosticReportStatusCode_REGISTERED,  // procedure scheduled, not done
	"A": c4.DiagnosticReportStatusCode_PARTIAL,     // some, not all, results available (IG: unmapped)
	"P": c4.DiagnosticReportStatusCode_PRELIMINARY, // preliminary
	"C": c4.DiagnosticReportStatusCode_CORRECTED,   // corrected, final
	"M": c4.DiagnosticReportStatusCode_CORRECTED,   // corrected, not final (IG: unmapped)
	"R": c4.DiagnosticReportStatusCode_PARTIAL,     // results stored, not yet verified
	"N": c4.DiagnosticReportStatusCode_PARTIAL,     // procedure completed, results pending (IG: unmapped)
	"F": c4.DiagnosticReportStatusCode_FINAL,       // final
	"X": c4.DiagnosticReportStatusCode_CANCELLED,   // order cancelled
}

// observationStatus maps OBX-11 (HL7 table 0085) to Observation.status, after
// the v2-to-FHIR ConceptMap ObservationResultStatusCodesInterpretation, with
// the codes the IG leaves open given the closest status.
var observationStatus = map[string]c4.ObservationStatusCode_Value{
	"A": c4.ObservationStatusCode_AMENDED,          // amended (demographic adjustments)
	"B": c4.ObservationStatusCode_AMENDED,          // appended report (IG: unmapped)
	"C": c4.ObservationStatusCode_CORRECTED,        // correction replacing a final result
	"D": c4.ObservationStatusCode_ENTERED_IN_ERROR, // deletes the OBX record
	"F": c4.ObservationStatusCode_FINAL,            // final
	"I": c4.ObservationStatusCode_REGISTERED,       // specimen in lab, result pending (IG: unmapped)
	"N": c4.ObservationStatusCode_CANCELLED,        // not asked (IG: unmapped); dataAbsentReason not-asked
	"O": c4.ObservationStatusCode_REGISTERED,       // order detail only, no result (IG: unmapped)
	"P": c4.ObservationStatusCode_PRELIMINARY,      // preliminary
	"R": c4.ObservationStatusCode_PRELIMINARY,      // entered, not verified (IG: unmapped)
	"S": c4.ObservationStatusCode_PRELIMINARY,      // partial (deprecated; IG: unmapped)
	"U": c4.ObservationStatusCode_FINAL,            // status changed to final without retransmission (IG: unmapped)
	"V": c4.ObservationStatusCode_FINAL,            // verified final (IG: unmapped)
	"W": c4.ObservationStatusCode_ENTERED_IN_ERROR, // posted as wrong (e.g. wrong patient)
	"X": c4.ObservationStatusCode_CANCELLED,        // result cannot be obtained; dataAbsentReason not-performed
}

// reportToObservation gives an Observation the status of its report when
// OBX-11 is empty (a v2 error; the report's status is the best evidence).
var reportToObservation = map[c4.DiagnosticReportStatusCode_Value]c4.ObservationStatusCode_Value{
	c4.DiagnosticReportStatusCode_REGISTERED:  c4.ObservationStatusCode_REGISTERED,
	c4.DiagnosticReportStatusCode_PARTIAL:     c4.ObservationStatusCode_PRELIMINARY,
	c4.DiagnosticReportStatusCode_PRELIMINARY: c4.ObservationStatusCode_PRELIMINARY,
	c4.DiagnosticReportStatusCode_FINAL:       c4.ObservationStatusCode_FINAL,
	c4.DiagnosticReportStatusCode_CORRECTED:   c4.ObservationStatusCode_CORRECTED,
	c4.DiagnosticReportStatusCode_AMENDED:     c4.ObservationStatusCode_AMENDED,
	c4.DiagnosticReportStatusCode_CANCELLED:   c4.ObservationStatusCode_CANCELLED,
}

// documentStatus maps TXA-17 (document completion status, HL7 table 0271) to
// DiagnosticReport.status for an MDM document without OBR-25.
var documentStatus = map[string]c4.DiagnosticReportStatusCode_Value{
	"AU": c4.DiagnosticReportStatusCode_FINAL,       // authenticated
	"LA": c4.DiagnosticReportStatusCode_FINAL,       // legally authenticated
	"DO": c4.DiagnosticReportStatusCode_PRELIMINARY, // documented
	"DI": c4.DiagnosticReportStatusCode_PRELIMINARY, // dictated
	"PA": c4.DiagnosticReportStatusCode_PRELIMINARY, // pre-authenticated
	"IP": c4.DiagnosticReportStatusCode_PARTIAL,     // in progress
	"IN": c4.DiagnosticReportStatusCode_PARTIAL,     // incomplete
	"CA": c4.DiagnosticReportStatusCode_CANCELLED,   // cancelled
}

// section describes one OBR-24 diagnostic service section (HL7 table 0074).
type section struct {
	display string
	lab     bool   // a laboratory section: adds v2-0074 LAB and category laboratory
	loinc   string // LOINC report category (LP...) when the section has one
	obsCat  string // observation-category code for the Observations
}

// LOINC DiagnosticReport categories (the US Core / IPS report category codes).
const (
	loincRadiology  = "LP29684-5"
	loincCardiology = "LP29708-2"
	loincPathology  = "LP7839-6"
)

var loincCategoryDisplay = map[string]string{
	loincRadiology:  "Radiology",
	loincCardiology: "Cardiology",
	loincPathology:  "Pathology",
}

var sections = map[string]section{
	"AU":  {display: "Audiology", obsCat: "exam"},
	"BG":  {display: "Blood Gases", lab: true, obsCat: "laboratory"},
	"BLB": {display: "Blood Bank", lab: true, obsCat: "laboratory"},
	"CG":  {display: "Cytogenetics", lab: true, obsCat: "laboratory"},
	"CH":  {display: "Chemistry", lab: true, obsCat: "laboratory"},
	"CP":  {display: "Cytopathology", lab: true, loinc: loincPathology, obsCat: "laboratory"},
	"CT":  {display: "CAT Scan", loinc: loincRadiology, obsCat: "imaging"},
	"CTH": {display: "Cardiac Catheterization", loinc: loincCardiology, obsCat: "procedure"},
	"CUS": {display: "Cardiac Ultrasound", loinc: loincCardiology, obsCat: "imaging"},
	"EC":  {display: "Electrocardiac (e.g., EKG,  EEC, Holter)", loinc: loincCardiology, obsCat: "procedure"},
	"EN":  {display: "Electroneuro (EEG, EMG,EP,PSG)", obsCat: "procedure"},
	"GE":  {display: "Genetics", lab: true, obsCat: "laboratory"},
	"HM":  {display: "Hematology", lab: true, obsCat: "laboratory"},
	"ICU": {display: "Bedside ICU Monitoring", obsCat: "vital-signs"},
	"IMM": {display: "Immunology", lab: true, obsCat: "laboratory"},
	"LAB": {display: "Laboratory", lab: true, obsCat: "laboratory"},
	"MB":  {display: "Microbiology", lab: true, obsCat: "laboratory"},
	"MCB": {display: "Mycobacteriology", lab: true, obsCat: "laboratory"},
	"MYC": {display: "Mycology", lab: true, obsCat: "laboratory"},
	"NMR": {display: "Nuclear Magnetic Resonance", loinc: loincRadiology, obsCat: "imaging"},
	"NMS": {display: "Nuclear Medicine Scan", loinc: loincRadiology, obsCat: "imaging"},
	"NRS": {display: "Nursing Service Measures"},
	"OSL": {display: "Outside Lab", lab: true, obsCat: "laboratory"},
	"OT":  {display: "Occupational Therapy", obsCat: "therapy"},
	"OTH": {display: "Other"},
	"OUS": {display: "OB Ultrasound", loinc: loincRadiology, obsCat: "imaging"},
	"PF":  {display: "Pulmonary Function", obsCat: "procedure"},
	"PHR": {display: "Pharmacy"},
	"PHY": {display: "Physician (Hx. Dx, admission note, etc.)", obsCat: "exam"},
	"PT":  {display: "Physical Therapy", obsCat: "therapy"},
	"RAD": {display: "Radiology", loinc: loincRadiology, obsCat: "imaging"},
	"RC":  {display: "Respiratory Care (therapy)", obsCat: "therapy"},
	"RT":  {display: "Radiation Therapy", obsCat: "therapy"},
	"RUS": {display: "Radiology Ultrasound", loinc: loincRadiology, obsCat: "imaging"},
	"RX":  {display: "Radiograph", loinc: loincRadiology, obsCat: "imaging"},
	"SP":  {display: "Surgical Pathology", lab: true, loinc: loincPathology, obsCat: "laboratory"},
	"SR":  {display: "Serology", lab: true, obsCat: "laboratory"},
	"TX":  {display: "Toxicology", lab: true, obsCat: "laboratory"},
	"VR":  {display: "Virology", lab: true, obsCat: "laboratory"},
	"VUS": {display: "Vascular Ultrasound", loinc: loincRadiology, obsCat: "imaging"},
	"XRC": {display: "Cineradiograph", loinc: loincRadiology, obsCat: "imaging"},
}

// v3Interpretation lists the OBX-8 codes (HL7 table 0078) that are also codes
// of the FHIR R4 interpretation code system (v3 ObservationInterpretation),
// with their display. Others keep their code without a system.
var v3Interpretation = map[string]string{
	"<":     "Off scale low",
	">":     "Off scale high",
	"A":     "Abnormal",
	"AA":    "Critical abnormal",
	"AC":    "Anti-complementary substances present",
	"B":     "Better",
	"CAR":   "Carrier",
	"D":     "Significant change down",
	"DET":   "Detected",
	"E":     "Equivocal",
	"EX":    "outside threshold",
	"EXP":   "Expected",
	"H":     "High",
	"HH":    "Critical high",
	"HM":    "Hold for Medical Review",
	"HU":    "Significantly high",
	"HX":    "above high threshold",
	"I":     "Intermediate",
	"IE":    "Insufficient evidence",
	"IND":   "Indeterminate",
	"L":     "Low",
	"LL":    "Critical low",
	"LU":    "Significantly low",
	"LX":    "below low threshold",
	"MS":    "moderately susceptible",
	"N":     "Normal",
	"NCL":   "No CLSI defined breakpoint",
	"ND":    "Not detected",
	"NEG":   "Negative",
	"NR":    "Non-reactive",
	"NS":    "Non-susceptible",
	"OBX":   "Interpretation qualifiers in separate OBX segments",
	"POS":   "Positive",
	"QCF":   "Quality control failure",
	"R":     "Resistant",
	"RR":    "Reactive",
	"S":     "Susceptible",
	"SDD":   "Susceptible-dose dependent",
	"SYN-R": "Synergy - resistant",
	"SYN-S": "Synergy - susceptible",
	"TOX":   "Cytotoxic substance present",
	"U":     "Significant change up",
	"UNE":   "Unexpected",
	"VS":    "very susceptible",
	"W":     "Worse",
	"WR":    "Weakly reactive",
}

// conclusionCodes are OBX-3 LOINC codes whose text is the report's
// conclusion (DiagnosticReport.conclusion): impressions and final diagnoses.
var conclusionCodes = map[string]bool{
	"19005-8": true, // Radiology Imaging study [Impression] Narrative
	"22637-3": true, // Pathology report final diagnosis Narrative
	"55110-1": true, // Conclusions [Interpretation] Document
}
