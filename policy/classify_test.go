package policy

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// Builders for synthetic reports. No real patient data: identifiers are made up.

var (
	locOBX = Location{Segment: "OBX", Occurrence: 1, Field: "OBX-5"}
	dxID   = Coded{Code: "DX", Text: "Diagnosis", System: "L"}
)

// textReport is one order with one TX observation holding text.
func textReport(text string) *Report {
	return report(order(Coded{Code: "NARR", Text: "Report", System: "L"}, "", obsText(dxID, text)))
}

func obsText(id Coded, texts ...string) Observation {
	ob := Observation{ValueType: "TX", ID: id, Loc: Location{Segment: "OBX", Occurrence: 1}}
	for _, t := range texts {
		ob.Texts = append(ob.Texts, Text{Value: t, Loc: locOBX})
	}
	return ob
}

func obsCoded(id Coded, codes ...Coded) Observation {
	ob := Observation{ValueType: "CWE", ID: id, Loc: Location{Segment: "OBX", Occurrence: 1}}
	for _, c := range codes {
		c.Loc = locOBX
		ob.Codes = append(ob.Codes, c)
	}
	return ob
}

func order(service Coded, section string, obs ...Observation) Order {
	return Order{Service: service, ServiceSection: section, Observations: obs, Loc: Location{Segment: "OBR", Occurrence: 1},
		ServiceSectionLoc: Location{Segment: "OBR", Occurrence: 1, Field: "OBR-24"}}
}

func report(orders ...Order) *Report {
	return &Report{ControlID: "TEST-1", PatientID: "PAT-0001^^^TESTHOSP", Orders: orders}
}

func ln(code, text string) Coded { return Coded{Code: code, Text: text, System: "LN"} }

func withDiag(r *Report, d ...Coded) *Report {
	for i := range d {
		d[i].Loc = Location{Segment: "DG1", Occurrence: i + 1, Field: "DG1-3"}
	}
	r.Diagnoses = append(r.Diagnoses, d...)
	return r
}

func withFlags(ob Observation, flags ...string) Observation { ob.AbnormalFlags = flags; return ob }

func withNote(ob Observation, note string) Observation {
	ob.Notes = append(ob.Notes, Text{Value: note, Loc: Location{Segment: "NTE", Occurrence: 1, Field: "NTE-3"}})
	return ob
}

// priorHistory is a History with a prior malignancy for every patient.
type priorHistory bool

func (p priorHistory) PriorMalignancy(string) bool { return bool(p) }

type classifyCase struct {
	name  string
	r     *Report
	h     History
	rs    *RuleSet
	want  []string // exact tags, in output order
	rule  string   // some evidence (tags or suppressed) has this rule id
	match string   // some evidence has this match
	mod   string   // some evidence modifier contains this
}

var (
	mal  = []string{TagMalignancy, TagNewCancer}
	susp = []string{TagSuspectedMalignancy}
	none = []string{}
)

func runClassifyCases(t *testing.T, cases []classifyCase) {
	t.Helper()
	def, err := NewClassifier(DefaultRuleSet())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, tc := range cases {
		if seen[tc.name] {
			t.Fatalf("duplicate case name %q", tc.name)
		}
		seen[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			c := def
			if tc.rs != nil {
				if c, err = NewClassifier(tc.rs); err != nil {
					t.Fatal(err)
				}
			}
			got := c.Classify(tc.r, tc.h)
			names := tagNames(got)
			if names == nil {
				names = []string{}
			}
			if !reflect.DeepEqual(names, tc.want) {
				t.Fatalf("tags = %v, want %v\nevidence: %+v\nsuppressed: %+v", names, tc.want, got.Tags, got.Suppressed)
			}
			all := append(slices.Clone(got.Tags), got.Suppressed...)
			check := func(what, want string, ok func(e Evidence) bool) {
				if want == "" {
					return
				}
				for _, tg := range all {
					for _, e := range tg.Evidence {
						if ok(e) {
							return
						}
					}
				}
				t.Errorf("no evidence with %s %q in %+v / suppressed %+v", what, want, got.Tags, got.Suppressed)
			}
			check("rule", tc.rule, func(e Evidence) bool { return e.Rule == tc.rule })
			check("match", tc.match, func(e Evidence) bool { return e.Match == tc.match })
			check("modifier", tc.mod, func(e Evidence) bool { return strings.Contains(e.Modifier, tc.mod) })
			if got.RulesetVersion != c.RuleSet().Version() {
				t.Errorf("ruleset_version = %q", got.RulesetVersion)
			}
		})
	}
}

// TestClassifyServiceSection covers layer 1 (OBR-24, HL7 table 0074).
func TestClassifyServiceSection(t *testing.T) {
	svc := func(code string) *Report {
		return report(order(Coded{Code: "X1", Text: "Order", System: "L"}, code, obsText(dxID, "See report.")))
	}
	runClassifyCases(t, []classifyCase{
		{name: "SP surgical pathology", r: svc("SP"), want: []string{TagPathology}, rule: "svc-pathology", match: "SP"},
		{name: "PAT pathology", r: svc("PAT"), want: []string{TagPathology}},
		{name: "lower-case sp", r: svc("sp"), want: []string{TagPathology}},
		{name: "CP cytopathology", r: svc("CP"), want: []string{TagPathology, TagCytology}, rule: "svc-cytopathology"},
		{name: "CG cytogenetics", r: svc("CG"), want: []string{TagGenetic}},
		{name: "GE genetics", r: svc("GE"), want: []string{TagGenetic}},
		{name: "RAD radiology", r: svc("RAD"), want: []string{TagImaging}, rule: "svc-imaging"},
		{name: "CT CAT scan", r: svc("CT"), want: []string{TagImaging}},
		{name: "MR local", r: svc("MR"), want: []string{TagImaging}},
		{name: "NMR", r: svc("NMR"), want: []string{TagImaging}},
		{name: "NMS nuclear medicine", r: svc("NMS"), want: []string{TagImaging}},
		{name: "RUS radiology ultrasound", r: svc("RUS"), want: []string{TagImaging}},
		{name: "RX radiograph", r: svc("RX"), want: []string{TagImaging}},
		{name: "IMG diagnostic imaging", r: svc("IMG"), want: []string{TagImaging}},
		{name: "XRC cineradiograph", r: svc("XRC"), want: []string{TagImaging}},
		{name: "VUS vascular ultrasound", r: svc("VUS"), want: []string{TagImaging}},
		{name: "OUS OB ultrasound", r: svc("OUS"), want: []string{TagImaging}},
		{name: "CUS cardiac ultrasound", r: svc("CUS"), want: []string{TagImaging}},
		{name: "HM haematology is not sensitive", r: svc("HM"), want: none},
		{name: "CH chemistry is not sensitive", r: svc("CH"), want: none},
		{name: "MB microbiology is not sensitive", r: svc("MB"), want: none},
		{name: "blank section", r: svc("  "), want: none},
	})
}

// TestClassifyCodes covers layer 2 (LOINC and local codes on OBR-4/OBX-3) and names.
func TestClassifyCodes(t *testing.T) {
	local := Coded{Code: "X1", Text: "Order", System: "L"}
	nm := func(id Coded, v string) Observation {
		return Observation{ValueType: "NM", ID: id, Texts: nil, Loc: Location{Segment: "OBX", Occurrence: 1}}
	}
	ext, err := DefaultRuleSet().Extend(RuleSetExtension{LocalCodes: []CodeRule{
		{ID: "site-surgpath", System: "99HOSP", Codes: []string{"SURGPATH"}, Tags: []string{TagPathology}},
		{ID: "site-any-psa", System: "*", Codes: []string{"PSAX"}, Tags: []string{TagTumorMarker}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	runClassifyCases(t, []classifyCase{
		{name: "OBR-4 comprehensive pathology panel", r: report(order(ln("60567-5", "Comprehensive pathology report panel"), "")), want: []string{TagPathology}, rule: "loinc-pathology-report", match: "60567-5"},
		{name: "OBR-4 synoptic report", r: report(order(ln("60568-3", "Synoptic report"), "")), want: []string{TagPathology}},
		{name: "OBR-4 pathology study", r: report(order(ln("11526-1", "Pathology study"), "")), want: []string{TagPathology}},
		{name: "OBX-3 final diagnosis", r: report(order(local, "", obsText(ln("22637-3", "Final diagnosis"), "Benign breast tissue."))), want: []string{TagPathology}},
		{name: "OBX-3 gross description", r: report(order(local, "", obsText(ln("22634-0", "Gross"), "Received in formalin."))), want: []string{TagPathology}},
		{name: "OBX-3 in the alternate triplet", r: report(order(local, "", obsText(Coded{Code: "FDX", Text: "Final dx", System: "L", Alt: []Coded{ln("22637-3", "")}}, "Benign."))), want: []string{TagPathology}},
		{name: "LOINC without a system", r: report(order(Coded{Code: "22637-3", Text: "Final diagnosis"}, "")), want: []string{TagPathology}, mod: "system missing"},
		{name: "LOINC under LNC", r: report(order(Coded{Code: "11529-5", Text: "Surgical pathology", System: "LNC"}, "")), want: []string{TagPathology}},
		{name: "cytology study", r: report(order(ln("33717-0", "Cytology study"), "")), want: []string{TagPathology, TagCytology}, rule: "loinc-cytology"},
		{name: "Pap general category", r: report(order(local, "", obsText(ln("19762-4", "General categories"), "Negative for intraepithelial lesion or malignancy."))), want: []string{TagPathology, TagCytology}},
		{name: "Pap thin prep report", r: report(order(ln("47527-7", "Cytology report thin prep"), "")), want: []string{TagPathology, TagCytology}},
		{name: "imaging study", r: report(order(ln("18748-4", "Diagnostic imaging study"), "")), want: []string{TagImaging}, rule: "loinc-imaging"},
		{name: "radiology impression", r: report(order(local, "", obsText(ln("19005-8", "Impression"), "No acute findings."))), want: []string{TagImaging}},
		{name: "genetic analysis report", r: report(order(ln("51969-4", "Genetic analysis report"), "")), want: []string{TagGenetic}, rule: "loinc-genetic"},
		{name: "genetic variant panel", r: report(order(ln("81247-9", "Master HL7 genetic variant reporting panel"), "")), want: []string{TagGenetic}},
		{name: "PSA total", r: report(order(local, "", nm(ln("2857-1", "PSA"), "4.1"))), want: []string{TagTumorMarker}, rule: "loinc-tumor-marker-psa"},
		{name: "free PSA", r: report(order(local, "", nm(ln("10886-0", "PSA free"), "1.0"))), want: []string{TagTumorMarker}},
		{name: "CA-125", r: report(order(local, "", nm(ln("10334-1", "CA 125"), "12"))), want: []string{TagTumorMarker}},
		{name: "CEA", r: report(order(local, "", nm(ln("2039-6", "CEA"), "2"))), want: []string{TagTumorMarker}},
		{name: "CA 19-9", r: report(order(local, "", nm(ln("24108-3", "CA 19-9"), "20"))), want: []string{TagTumorMarker}},
		{name: "CA 15-3", r: report(order(local, "", nm(ln("6875-9", "CA 15-3"), "20"))), want: []string{TagTumorMarker}},
		{name: "CA 27.29", r: report(order(local, "", nm(ln("17842-6", "CA 27.29"), "20"))), want: []string{TagTumorMarker}},
		{name: "AFP", r: report(order(local, "", nm(ln("1834-1", "AFP"), "3"))), want: []string{TagTumorMarker}},
		{name: "PSA by local code and name", r: report(order(local, "", nm(Coded{Code: "1234", Text: "PSA, Total", System: "99LAB"}, "4"))), want: []string{TagTumorMarker}, rule: "name-tumor-marker", match: "PSA"},
		{name: "CA19-9 name with no space", r: report(order(local, "", nm(Coded{Code: "C199", Text: "CA19-9", System: "L"}, "4"))), want: []string{TagTumorMarker}},
		{name: "carcinoembryonic antigen name", r: report(order(local, "", nm(Coded{Code: "Z1", Text: "Carcinoembryonic Antigen", System: "L"}, "4"))), want: []string{TagTumorMarker}},
		{name: "abnormal tumour marker flag recorded", r: report(order(local, "", withFlags(nm(ln("2857-1", "PSA"), "12"), "H"))), want: []string{TagTumorMarker}, rule: "settings.abnormal_flags", match: "H"},
		{name: "hCG alone is a pregnancy test", r: report(order(local, "", nm(Coded{Code: "HCG", Text: "hCG, quantitative", System: "L"}, "5"))), want: none},
		{name: "hCG beside AFP is a tumour marker", r: report(order(local, "", nm(Coded{Code: "HCG", Text: "Beta hCG", System: "L"}, "5"), nm(ln("1834-1", "AFP"), "3"))), want: []string{TagTumorMarker}, rule: "name-tumor-marker-hcg"},
		{name: "maternal serum AFP is prenatal screening", r: report(order(local, "", nm(Coded{Code: "MSAFP", Text: "AFP, maternal serum", System: "L"}, "1.1"))), want: none},
		{name: "thyroglobulin antibody is not a marker", r: report(order(local, "", nm(Coded{Code: "TGAB", Text: "Thyroglobulin Antibody", System: "L"}, "1"))), want: none},
		{name: "playbook name CT prefix", r: report(order(Coded{Code: "CTCH", Text: "CT CHEST W CONTRAST IV", System: "L"}, "")), want: []string{TagImaging}, rule: "name-imaging-modality-prefix"},
		{name: "radiograph views", r: report(order(Coded{Code: "R1", Text: "SHOULDER MIN 2 VIEW, LT", System: "L"}, "")), want: []string{TagImaging}},
		{name: "mammogram name", r: report(order(Coded{Code: "M1", Text: "Screening Mammogram Bilateral", System: "L"}, "")), want: []string{TagImaging}},
		{name: "CT/NG is a chlamydia test", r: report(order(Coded{Code: "CTNG", Text: "CT/NG NAA", System: "L"}, "")), want: none},
		{name: "Ct value in OBX-3 is not imaging", r: report(order(local, "", nm(Coded{Code: "CTV", Text: "Ct value", System: "L"}, "22"))), want: none},
		{name: "imaging words in a pathology OBX-3 label", r: report(order(local, "", obsText(Coded{Code: "Diagnostic Imaging for Identification of Suspect Area/s:"}, "not required"))), want: none},
		{name: "surgical pathology name", r: report(order(Coded{Code: "SP1", Text: "Surgical Pathology Report", System: "L"}, "")), want: []string{TagPathology}},
		{name: "pap smear name", r: report(order(Coded{Code: "PAP", Text: "Pap smear, ThinPrep", System: "L"}, "")), want: []string{TagPathology, TagCytology}},
		{name: "BRCA name", r: report(order(Coded{Code: "BRCA", Text: "BRCA1/BRCA2 full sequencing", System: "L"}, "")), want: []string{TagGenetic}},
		{name: "CBC is routine", r: report(order(ln("58410-2", "CBC panel"), "", nm(ln("718-7", "Hemoglobin"), "13"))), want: none},
		{name: "calcium Ca is not cancer", r: report(order(local, "", obsText(Coded{Code: "CA", Text: "Calcium", System: "L"}, "Ca 9.5 mg/dL"))), want: none},
		{name: "local code from config", rs: ext, r: report(order(Coded{Code: "SURGPATH", Text: "Tissue", System: "99HOSP"}, "")), want: []string{TagPathology}, rule: "site-surgpath"},
		{name: "local code any system", rs: ext, r: report(order(local, "", nm(Coded{Code: "PSAX", Text: "Prostate marker", System: "99XYZ"}, "1"))), want: []string{TagTumorMarker}, rule: "site-any-psa"},
		{name: "local code wrong system", rs: ext, r: report(order(Coded{Code: "SURGPATH", Text: "Tissue", System: "99OTHER"}, "")), want: none},
	})
}

// TestClassifyCodedValues covers layer 3 (OBX-5 and DG1-3).
func TestClassifyCodedValues(t *testing.T) {
	cv := func(code, text, sys string) *Report {
		return report(order(Coded{Code: "X1", Text: "Order", System: "L"}, "", obsCoded(dxID, Coded{Code: code, Text: text, System: sys})))
	}
	none10, err := DefaultRuleSet().Extend(RuleSetExtension{UncertainNeoplasm: TagNone})
	if err != nil {
		t.Fatal(err)
	}
	runClassifyCases(t, []classifyCase{
		{name: "ICD-10-CM C50.911 breast", r: cv("C50.911", "Malignant neoplasm of right female breast", "I10"), want: mal, rule: "icd10cm-malignant"},
		{name: "ICD-10-CM C61 under ICD10CM", r: cv("C61", "Malignant neoplasm of prostate", "ICD10CM"), want: mal},
		{name: "ICD-10-CM C7A.010 carcinoid", r: cv("C7A.010", "Malignant carcinoid tumor of the duodenum", "I10"), want: mal},
		{name: "ICD-10-CM C7B.02 secondary carcinoid", r: cv("C7B.02", "Secondary carcinoid tumors of liver", "I10C"), want: mal},
		{name: "ICD-10-CM C96.9 upper bound", r: cv("C96.9", "", "I10"), want: mal},
		{name: "ICD-10-CM D05.11 in situ", r: cv("D05.11", "Intraductal carcinoma in situ of right breast", "I10"), want: mal, rule: "icd10cm-in-situ"},
		{name: "ICD-10-CM D09.9 in situ upper bound", r: cv("D09.9", "", "I10"), want: mal},
		{name: "ICD-10-CM D12.6 benign", r: cv("D12.6", "Benign neoplasm of colon", "I10"), want: none},
		{name: "ICD-10-CM D3A.010 benign carcinoid", r: cv("D3A.010", "Benign carcinoid tumor of the duodenum", "I10"), want: none},
		{name: "ICD-10-CM D48.1 uncertain is suspected", r: cv("D48.1", "Neoplasm of uncertain behavior of connective tissue", "I10"), want: susp, rule: "icd10cm-uncertain"},
		{name: "ICD-10-CM D49.2 unspecified is suspected", r: cv("D49.2", "", "I10"), want: susp},
		{name: "ICD-10-CM D48.1 with uncertain switched off", rs: none10, r: cv("D48.1", "", "I10"), want: none},
		{name: "ICD-10-CM Z85.3 history only", r: cv("Z85.3", "Personal history of malignant neoplasm of breast", "I10"), want: none},
		{name: "ICD-10 shape with missing system", r: cv("C34.90", "", ""), want: mal, mod: "system missing"},
		{name: "ICD-9-CM 174.9", r: cv("174.9", "Malignant neoplasm of breast", "I9C"), want: mal, rule: "icd9cm-malignant"},
		{name: "ICD-9-CM 217 benign", r: cv("217", "Benign neoplasm of breast", "I9C"), want: none},
		{name: "ICD-O-3 8140/3 adenocarcinoma", r: cv("8140/3", "Adenocarcinoma, NOS", "ICDO3"), want: mal, rule: "icdo3-behaviour"},
		{name: "ICD-O-3 without slash", r: cv("81403", "Adenocarcinoma, NOS", "ICDO3"), want: mal},
		{name: "ICD-O-3 with M- prefix and grade", r: cv("M-8500/32", "", "ICDO3"), want: mal},
		{name: "ICD-O-3 8500/2 in situ", r: cv("8500/2", "", "ICDO3"), want: mal},
		{name: "ICD-O-3 8140/6 metastatic", r: cv("8140/6", "", "ICDO3"), want: mal},
		{name: "ICD-O-3 8140/0 adenoma benign", r: cv("8140/0", "Adenoma, NOS", "ICDO3"), want: none},
		{name: "ICD-O-3 8000/1 uncertain behaviour", r: cv("8000/1", "", "ICDO3"), want: none},
		{name: "ICD-O-3 topography is a site", r: cv("C50.9", "Breast, NOS", "ICDO3"), want: none},
		{name: "ICD-O-3 morphology with missing system", r: cv("8070/3", "", ""), want: mal, mod: "ICD-O-3"},
		{name: "SNOMED CT 363346000", r: cv("363346000", "Malignant neoplastic disease", "SCT"), want: mal, rule: "snomed-malignancy"},
		{name: "SNOMED CT 128462008 secondary", r: cv("128462008", "Secondary malignant neoplastic disease", "SCT"), want: mal},
		{name: "SNOMED CT 254837009 breast", r: cv("254837009", "Malignant neoplasm of breast", "SNM"), want: mal},
		{name: "SNOMED CT unlisted code read by text", r: cv("999999991", "Adenocarcinoma of unusual site", "SCT"), want: mal, rule: "lex-carcinoma"},
		{name: "SNOMED CT unlisted benign concept", r: cv("92759008", "Fibroadenoma of breast", "SCT"), want: none},
		{name: "SNOMED CT VIN III is suspected", r: cv("276875006", "Vulval intraepithelial neoplasia grade III", "SCT"), want: susp},
		{name: "local coded value read by text", r: cv("2245.1000", "Adenocarcinoma", "CAPECC"), want: mal, rule: "lex-carcinoma"},
		{name: "local negative answer", r: cv("NEG", "Negative", "L"), want: none},
		{name: "alternate triplet ICD-O-3", r: report(order(Coded{Code: "X1", System: "L"}, "", obsCoded(dxID, Coded{Code: "2245", Text: "Papillary neoplasm", System: "CAPECC", Alt: []Coded{{Code: "85033", Text: "", System: "ICDO3"}}}))), want: []string{TagMalignancy, TagSuspectedMalignancy, TagNewCancer}, rule: "icdo3-behaviour"},
		{name: "DG1 C18.7", r: withDiag(report(), Coded{Code: "C18.7", Text: "Malignant neoplasm of sigmoid colon", System: "I10"}), want: mal, match: "C18.7 Malignant neoplasm of sigmoid colon"},
		{name: "DG1 Z85 makes a malignancy not new", r: withDiag(cv("C50.911", "", "I10"), Coded{Code: "Z85.3", System: "I10"}), want: []string{TagMalignancy}, rule: "icd10cm-history"},
		{name: "DG1 screening code", r: withDiag(report(), Coded{Code: "Z12.31", Text: "Encounter for screening mammogram for malignant neoplasm of breast", System: "I10"}), want: none},
	})
}

// TestClassifyCategories covers layer 4 (structured categories as text).
func TestClassifyCategories(t *testing.T) {
	runClassifyCases(t, []classifyCase{
		{name: "BI-RADS 0", r: textReport("BI-RADS 0: incomplete."), want: none},
		{name: "BI-RADS 2", r: textReport("ASSESSMENT: BI-RADS 2 - Benign."), want: none},
		{name: "BI-RADS 3", r: textReport("BI-RADS Category 3: probably benign."), want: none},
		{name: "BI-RADS 4", r: textReport("BI-RADS 4: Suspicious abnormality. Biopsy recommended."), want: susp, rule: "cat-birads"},
		{name: "BI-RADS 4A", r: textReport("Final assessment: BI-RADS category 4A."), want: susp, match: "BI-RADS category 4A"},
		{name: "BI-RADS 4 C with space", r: textReport("BIRADS 4 C"), want: susp},
		{name: "BI-RADS 5", r: textReport("ACR BI-RADS: 5 - Highly suggestive of malignancy."), want: susp},
		{name: "BI-RADS 6 known malignancy is not new", r: textReport("BI-RADS 6: Known biopsy-proven malignancy."), want: []string{TagMalignancy}},
		{name: "BI-RADS in OBX-3 label with value", r: report(order(Coded{Code: "MG", Text: "MG breast", System: "L"}, "", obsText(Coded{Code: "BIRADS", Text: "BI-RADS Assessment Category", System: "L"}, "4B"))), want: []string{TagImaging, TagSuspectedMalignancy}},
		{name: "Bethesda thyroid V", r: textReport("Thyroid FNA: Suspicious for papillary carcinoma (Bethesda category V)."), want: susp},
		{name: "Bethesda thyroid VI", r: textReport("Diagnostic category: Bethesda VI."), want: mal, rule: "cat-bethesda-thyroid"},
		{name: "Bethesda thyroid II benign", r: textReport("Benign follicular nodule (Bethesda category II)."), want: none},
		{name: "Bethesda thyroid III AUS", r: textReport("Atypia of undetermined significance, Bethesda III."), want: none},
		{name: "Bethesda system without a value", r: textReport("Reported using the 2014 Bethesda System."), want: none},
		{name: "cervical HSIL", r: textReport("High-grade squamous intraepithelial lesion (HSIL)."), want: susp, rule: "cat-bethesda-cervical-suspected"},
		{name: "cervical ASC-H", r: textReport("ASC-H."), want: susp},
		{name: "cervical AIS", r: textReport("Endocervical adenocarcinoma in situ (AIS)."), want: mal},
		{name: "cervical NILM", r: textReport("NILM. Negative for intraepithelial lesion or malignancy."), want: none},
		{name: "cervical ASC-US", r: textReport("Atypical squamous cells of undetermined significance (ASC-US)."), want: none},
		{name: "cervical LSIL", r: textReport("Low-grade squamous intraepithelial lesion (LSIL) encompassing HPV/mild dysplasia/CIN 1."), want: none},
		{name: "cervical squamous carcinoma", r: textReport("Squamous cell carcinoma."), want: mal},
		{name: "Lung-RADS 4A", r: textReport("Lung-RADS 4A: suspicious."), want: susp, rule: "cat-lung-rads"},
		{name: "Lung-RADS 4X", r: textReport("Lung-RADS category 4X."), want: susp},
		{name: "Lung-RADS with version", r: textReport("Lung-RADS v1.1 Category 4B: very suspicious."), want: susp},
		{name: "BI-RADS registered sign", r: textReport("BI-RADS® 5: highly suggestive of malignancy."), want: susp},
		{name: "Lung-RADS 2", r: textReport("Lung-RADS 2: benign appearance."), want: none},
		{name: "LI-RADS LR-5", r: textReport("Segment 7 observation: LR-5."), want: mal, rule: "cat-li-rads"},
		{name: "LI-RADS category LR-M", r: textReport("LI-RADS category LR-M."), want: susp},
		{name: "LI-RADS LR-3", r: textReport("LI-RADS LR-3 intermediate probability."), want: none},
		{name: "PI-RADS 4", r: textReport("PI-RADS 4 lesion in the left peripheral zone."), want: susp, rule: "cat-pi-rads"},
		{name: "PI-RADS 5", r: textReport("PIRADS score: 5"), want: susp},
		{name: "PI-RADS 3", r: textReport("PI-RADS 3."), want: none},
		{name: "TI-RADS 5", r: textReport("ACR TI-RADS TR5."), want: susp},
	})
}

// TestClassifyFreeText covers layer 5: the lexicon with negation, hedges and context.
func TestClassifyFreeText(t *testing.T) {
	runClassifyCases(t, []classifyCase{
		// Terms.
		{name: "invasive ductal carcinoma", r: textReport("Invasive ductal carcinoma, grade 2."), want: mal, match: "Invasive ductal carcinoma"},
		{name: "adenocarcinoma plural", r: textReport("Multiple adenocarcinomas."), want: mal},
		{name: "squamous cell carcinoma upper case", r: textReport("SQUAMOUS CELL CARCINOMA, MODERATELY DIFFERENTIATED"), want: mal},
		{name: "urothelial carcinoma", r: textReport("High-grade papillary urothelial carcinoma."), want: mal},
		{name: "hepatocellular carcinoma", r: textReport("Hepatocellular carcinoma, well differentiated."), want: mal},
		{name: "renal cell carcinoma", r: textReport("Renal cell carcinoma, clear cell type."), want: mal},
		{name: "small cell carcinoma", r: textReport("Small cell carcinoma."), want: mal},
		{name: "non-small cell lung carcinoma hyphens", r: textReport("Non-small-cell lung carcinoma."), want: mal},
		{name: "sarcoma kind", r: textReport("Leiomyosarcoma, high grade."), want: mal, rule: "lex-sarcoma"},
		{name: "non-Hodgkin's lymphoma apostrophe", r: textReport("Non-Hodgkin's lymphoma."), want: mal, rule: "lex-lymphoma"},
		{name: "leukaemia British", r: textReport("Findings are diagnostic of acute myeloid leukaemia."), want: mal, rule: "lex-leukaemia"},
		{name: "leukemia US", r: textReport("Chronic lymphocytic leukemia."), want: mal},
		{name: "myeloma", r: textReport("Plasma cell myeloma, 40% of marrow cellularity."), want: mal},
		{name: "melanoma", r: textReport("Malignant melanoma, Breslow thickness 1.2 mm."), want: mal},
		{name: "mesothelioma", r: textReport("Epithelioid mesothelioma."), want: mal},
		{name: "glioblastoma", r: textReport("Glioblastoma, IDH-wildtype, CNS WHO grade 4."), want: mal},
		{name: "neuroblastoma", r: textReport("Neuroblastoma, poorly differentiated."), want: mal},
		{name: "seminoma", r: textReport("Seminoma, pure."), want: mal, rule: "lex-germ-cell"},
		{name: "germ cell tumour British", r: textReport("Mixed germ cell tumour."), want: mal},
		{name: "metastatic", r: textReport("Metastatic adenocarcinoma in 2 of 14 lymph nodes."), want: mal},
		{name: "metastases plural", r: textReport("Multiple hepatic metastases."), want: mal, rule: "lex-metastasis"},
		{name: "positive for malignant cells", r: textReport("Pleural fluid: positive for malignant cells."), want: mal, match: "positive for malignant cells"},
		{name: "carcinoma in situ", r: textReport("Ductal carcinoma in situ, nuclear grade 3."), want: mal, rule: "lex-carcinoma-in-situ"},
		{name: "malignant neoplasm words", r: textReport("Malignant neoplasm."), want: mal},
		{name: "neoplasm alone is suspected", r: textReport("Neoplasm, see comment."), want: susp, rule: "lex-neoplasm-uncertain"},
		{name: "word boundary carcinomatous", r: textReport("Carcinomatousness is not a word."), want: none},
		{name: "tumour alone is not malignancy", r: textReport("Tumour measures 2 cm."), want: none},
		// Negation.
		{name: "negative for malignancy", r: textReport("Negative for malignancy."), want: none, mod: "negated: Negative for"},
		{name: "no evidence of malignancy", r: textReport("No evidence of malignancy."), want: none},
		{name: "without carcinoma", r: textReport("Benign colonic mucosa without dysplasia or carcinoma."), want: none},
		{name: "free of tumour", r: textReport("Lymph nodes free of tumour cells and carcinoma."), want: none},
		{name: "no sign of lymphoma", r: textReport("No sign of lymphoma."), want: none},
		{name: "rules out carcinoma", r: textReport("This rules out carcinoma."), want: none},
		{name: "absence of malignancy", r: textReport("Absence of malignancy in the sampled tissue."), want: none},
		{name: "not carcinoma", r: textReport("The lesion is not carcinoma."), want: none},
		{name: "post carcinoma not identified", r: textReport("Carcinoma not identified."), want: none, mod: "negated: not identified"},
		{name: "post malignancy was ruled out", r: textReport("Malignancy was ruled out."), want: none},
		{name: "post malignant cells absent", r: textReport("Malignant cells: absent."), want: none},
		{name: "post metastases are not seen", r: textReport("Metastases are not seen."), want: none},
		{name: "known history of is history", r: textReport("Known history of prostate cancer with rising PSA."), want: none, mod: "history"},
		{name: "post lymphoma is negative", r: textReport("Flow cytometry for lymphoma is negative."), want: none},
		{name: "coordinated list all negated", r: textReport("Negative for high-grade dysplasia or carcinoma."), want: none},
		{name: "coordinated list of three", r: textReport("No evidence of lymphoma, leukemia, or metastatic carcinoma."), want: none},
		{name: "pseudo no increase", r: textReport("No increase in size of the known carcinoma."), want: []string{TagMalignancy}},
		{name: "pseudo gram negative", r: textReport("Gram negative rods; squamous cell carcinoma present."), want: mal},
		{name: "pseudo not only", r: textReport("Not only adenocarcinoma but also squamous differentiation."), want: mal},
		{name: "pseudo no change", r: textReport("No change in metastatic disease."), want: mal},
		{name: "termination but", r: textReport("No dysplasia but invasive adenocarcinoma is present."), want: mal},
		{name: "termination however", r: textReport("Negative for lymphoma, however metastatic carcinoma is seen."), want: mal},
		{name: "termination except", r: textReport("All nodes are free of disease except one, which contains metastatic carcinoma."), want: mal},
		{name: "termination aside from", r: textReport("No abnormality aside from a small focus of adenocarcinoma."), want: mal},
		{name: "sentence scope", r: textReport("No lymphovascular invasion. Adenocarcinoma of the colon."), want: mal},
		{name: "semicolon scope", r: textReport("No necrosis; metastatic melanoma."), want: mal},
		{name: "window limits pre negation", r: textReport("No history of trauma was given by the referring clinician on the form for this specimen, which shows carcinoma."), want: mal},
		{name: "margins negative keeps the diagnosis", r: textReport("Invasive ductal carcinoma, margins negative."), want: mal},
		{name: "margins free of carcinoma keeps the diagnosis", r: textReport("Invasive lobular carcinoma. Margins free of carcinoma."), want: mal},
		{name: "margins are negative without comma", r: textReport("Adenocarcinoma with all margins negative for tumor."), want: mal},
		{name: "negative margins pseudo", r: textReport("Squamous cell carcinoma with negative margins."), want: mal},
		{name: "ER negative is not negation", r: textReport("Invasive carcinoma ER negative PR negative HER2 negative."), want: mal},
		{name: "triple negative carcinoma", r: textReport("Triple-negative breast carcinoma."), want: mal},
		{name: "nodes negative after diagnosis", r: textReport("Adenocarcinoma; lymph nodes negative (0/12)."), want: mal},
		{name: "zero of N nodes involved", r: textReport("0 of 15 lymph nodes involved by metastatic carcinoma."), want: none},
		{name: "zero spelled out", r: textReport("Zero of fifteen lymph nodes with metastatic carcinoma."), want: none},
		// Known limit: "positive for" ends negation scope, so "0 of 15 nodes positive
		// for metastatic carcinoma" is still tagged (docs/RULESET.md).
		{name: "zero count before positive for is still tagged", r: textReport("0 of 15 lymph nodes positive for metastatic carcinoma."), want: mal},
		{name: "none of the nodes", r: textReport("None of the lymph nodes show metastatic carcinoma."), want: none},
		{name: "counted nodes after a diagnosis", r: textReport("Invasive ductal carcinoma. 0 of 15 lymph nodes positive."), want: mal},
		{name: "hard-wrapped negation continues", r: textReport("Negative for\nmalignancy."), want: none},
		{name: "list item breaks scope", r: textReport("No residual disease in part A\n2. Metastatic carcinoma in lymph node."), want: mal},
		// Hedges.
		{name: "suspicious for", r: textReport("Atypical cells, suspicious for adenocarcinoma."), want: susp, mod: "hedge: suspicious for"},
		{name: "concerning for", r: textReport("Findings concerning for lymphoma."), want: susp},
		{name: "worrisome for", r: textReport("Mass worrisome for malignancy."), want: susp},
		{name: "highly suggestive of", r: textReport("Highly suggestive of metastatic disease."), want: susp},
		{name: "cannot be excluded", r: textReport("Lymphoma cannot be excluded."), want: susp, mod: "cannot be excluded"},
		{name: "cannot be ruled out", r: textReport("Malignancy cannot be ruled out."), want: susp},
		{name: "cannot rule out pre", r: textReport("Cannot rule out carcinoma."), want: susp},
		{name: "probable", r: textReport("Probable metastasis to the liver."), want: susp},
		{name: "atypical suspicious", r: textReport("Atypical glandular proliferation suspicious for carcinoma."), want: susp},
		{name: "consistent with is affirmative", r: textReport("Findings consistent with adenocarcinoma."), want: mal},
		{name: "compatible with is affirmative", r: textReport("Compatible with metastatic melanoma."), want: mal},
		{name: "versus is a differential", r: textReport("Reactive lymphoid hyperplasia versus lymphoma."), want: susp},
		{name: "negation beats hedge", r: textReport("No definite evidence of malignancy, though atypia is present."), want: none},
		{name: "suspicious but not diagnostic", r: textReport("Atypical glands, suspicious but not diagnostic of adenocarcinoma."), want: susp},
		{name: "not diagnostic of is a hedge", r: textReport("Findings are not diagnostic of lymphoma."), want: susp},
		{name: "low probability of is a negation", r: textReport("Low probability of malignancy."), want: none},
		{name: "not suspicious for is a negation", r: textReport("The nodule is not suspicious for malignancy."), want: none},
		{name: "favour British", r: textReport("Favour metastatic carcinoma."), want: susp},
		// Context.
		{name: "history of", r: textReport("History of breast cancer."), want: none, mod: "history: History of"},
		{name: "history of then new diagnosis is not new", r: textReport("History of colon cancer. Liver, biopsy: adenocarcinoma."), want: []string{TagMalignancy}},
		{name: "family history", r: textReport("Family history of ovarian cancer."), want: none, mod: "family"},
		{name: "mother with", r: textReport("Mother with breast carcinoma at 45."), want: none},
		{name: "rule out", r: textReport("Rule out lymphoma."), want: none, mod: "query"},
		{name: "r/o abbreviation", r: textReport("R/O carcinoma."), want: none},
		{name: "to exclude", r: textReport("Biopsy to exclude malignancy."), want: none},
		{name: "screening for", r: textReport("Screening for colorectal cancer."), want: none},
		{name: "cancer screening pseudo", r: textReport("Cancer screening program letter."), want: none},
		{name: "labeled specimen", r: textReport("Received in formalin labeled \"left breast mass, carcinoma\"."), want: none, mod: "label"},
		{name: "known is malignancy but not new", r: textReport("Known metastatic carcinoma, enlarging liver lesions."), want: []string{TagMalignancy}, mod: "known"},
		{name: "recurrent is malignancy but not new", r: textReport("Recurrent urothelial carcinoma."), want: []string{TagMalignancy}},
		{name: "clinical history header", r: textReport("CLINICAL HISTORY: breast carcinoma.\nFINAL DIAGNOSIS: Benign fibroadenoma."), want: none, mod: "context-section"},
		{name: "clinical history header then diagnosis", r: textReport("Clinical history: r/o lymphoma\nDiagnosis: Follicular lymphoma, grade 1-2."), want: mal},
		{name: "indication header", r: textReport("INDICATION: Lung cancer screening.\nIMPRESSION: No suspicious nodule."), want: none},
		{name: "header needs a colon", r: textReport("History is unremarkable and the biopsy shows carcinoma."), want: mal},
		{name: "clinical history LOINC section", r: report(order(Coded{Code: "X", System: "L"}, "", obsText(ln("22636-5", "Clinical history"), "Carcinoma of breast."))), want: []string{TagPathology}},
		{name: "NTE malignancy", r: report(order(Coded{Code: "X", System: "L"}, "", withNote(obsText(dxID, "See note."), "Addendum: metastatic adenocarcinoma confirmed."))), want: mal},
		{name: "order NTE read", r: func() *Report {
			r := textReport("See below.")
			r.Orders[0].Notes = []Text{{Value: "Comment: seminoma.", Loc: Location{Segment: "NTE", Occurrence: 1, Field: "NTE-3"}}}
			return r
		}(), want: mal},
		{name: "synoptic label present", r: report(order(Coded{Code: "X", System: "L"}, "", obsText(Coded{Code: "Invasive Carcinoma:"}, "present"))), want: mal, mod: "value: present"},
		{name: "synoptic label absent", r: report(order(Coded{Code: "X", System: "L"}, "", obsText(Coded{Code: "In Situ Carcinoma:"}, "absent"))), want: none},
		{name: "synoptic label not applicable", r: report(order(Coded{Code: "X", System: "L"}, "", obsText(Coded{Code: "Distant Metastasis (pM):"}, "Not applicable"))), want: none},
		{name: "en dash joins words", r: textReport("LUMPECTOMY: INVASIVE DUCTAL CARCINOMA – ADDENDUM TO FOLLOW"), want: mal},
		{name: "empty report", r: report(), want: none},
		{name: "report title in upper case", r: textReport("SURGICAL PATHOLOGY REPORT\nDiagnosis: benign."), want: []string{TagPathology}, rule: "name-pathology"},
		{name: "report title CT", r: textReport("CT CHEST WITH CONTRAST\nIMPRESSION: No acute process."), want: []string{TagImaging}},
		{name: "lower-case first line is not a title", r: textReport("Biopsy recommended.\nNo other findings."), want: none},
		{name: "huge value is analysed in chunks", r: textReport(strings.Repeat("Benign tissue. ", 5000) + "Metastatic melanoma."), want: mal},
	})
}

// TestClassifyNewCancer covers the new-cancer rule and History.
func TestClassifyNewCancer(t *testing.T) {
	runClassifyCases(t, []classifyCase{
		{name: "no history is new", r: textReport("Adenocarcinoma."), want: mal, rule: "history.no-prior-malignancy"},
		{name: "history false is new", r: textReport("Adenocarcinoma."), h: priorHistory(false), want: mal},
		{name: "history true is not new", r: textReport("Adenocarcinoma."), h: priorHistory(true), want: []string{TagMalignancy}, rule: "history.prior-malignancy"},
		{name: "suspected is never new", r: textReport("Suspicious for adenocarcinoma."), want: susp},
		{name: "Z85 in OBX-5 makes it not new", r: report(order(Coded{Code: "X", System: "L"}, "", obsText(dxID, "Adenocarcinoma."), obsCoded(dxID, Coded{Code: "Z85.038", System: "I10"}))), want: []string{TagMalignancy}},
		{name: "s/p treatment is prior", r: textReport("S/p resection of melanoma. Now metastatic melanoma in axillary node."), want: []string{TagMalignancy}},
	})
}

// TestClassifyDeterministic checks that the same report gives the same output
// and that free-text evidence offsets point at the match.
func TestClassifyDeterministic(t *testing.T) {
	c, err := NewClassifier(DefaultRuleSet())
	if err != nil {
		t.Fatal(err)
	}
	text := "FINAL DIAGNOSIS: A. Breast, left: Invasive ductal carcinoma; margins negative. B. Lymph node: metastatic carcinoma (1/3). BI-RADS 6."
	r := report(order(ln("60567-5", "Pathology"), "SP", obsText(ln("22637-3", "Final diagnosis"), text)))
	first := c.Classify(r, nil)
	for i := 0; i < 20; i++ {
		if got := c.Classify(r, nil); !reflect.DeepEqual(got, first) {
			t.Fatalf("run %d differs:\n%+v\n%+v", i, got, first)
		}
	}
	for _, tg := range first.Tags {
		for _, e := range tg.Evidence {
			if e.Layer == LayerFreeText && text[e.Start:e.End] != e.Match {
				t.Errorf("evidence %+v: text[%d:%d] = %q", e, e.Start, e.End, text[e.Start:e.End])
			}
		}
	}
	want := []string{TagPathology, TagMalignancy}
	if got := tagNames(first); !reflect.DeepEqual(got, want) {
		t.Errorf("tags = %v, want %v (BI-RADS 6 means known)", got, want)
	}
}

// TestClassifyDisabledTag checks per-tag switches from an extension.
func TestClassifyDisabledTag(t *testing.T) {
	rs, err := DefaultRuleSet().Extend(RuleSetExtension{Tags: map[string]bool{TagImaging: false}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClassifier(rs)
	if err != nil {
		t.Fatal(err)
	}
	got := c.Classify(report(order(ln("18748-4", "Imaging"), "RAD", obsText(dxID, "Metastatic disease."))), nil)
	if want := []string{TagMalignancy, TagNewCancer}; !reflect.DeepEqual(tagNames(got), want) {
		t.Errorf("tags = %v, want %v", tagNames(got), want)
	}
}

// TestClassifyConcurrent shares one Classifier between goroutines (run with
// -race): compiled tables are read-only and scratch space is pooled.
func TestClassifyConcurrent(t *testing.T) {
	c, err := NewClassifier(DefaultRuleSet())
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{"Invasive ductal carcinoma.", "Negative for malignancy.", "Suspicious for lymphoma.", "BI-RADS 6."}
	want := make([]Classification, len(texts))
	for i, s := range texts {
		want[i] = c.Classify(textReport(s), nil)
	}
	done := make(chan error, 8)
	for g := 0; g < 8; g++ {
		go func(g int) {
			for i := 0; i < 200; i++ {
				k := (g + i) % len(texts)
				if got := c.Classify(textReport(texts[k]), nil); !equalClassification(got, want[k]) {
					done <- fmt.Errorf("goroutine %d: %q classified differently", g, texts[k])
					return
				}
			}
			done <- nil
		}(g)
	}
	for g := 0; g < 8; g++ {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// TestCodeLookupsMatchComposedKeys checks that the look-ups identifiers and
// coded values make by code alone (loinc, anySys, systemClass) answer what
// the composed "system|code" keys of codes and ctxCodes answer, for every
// code a key could be asked with, including rules whose system or code holds
// a "|" (so that one composed key reads as another system's code).
func TestCodeLookupsMatchComposedKeys(t *testing.T) {
	ext, err := DefaultRuleSet().Extend(RuleSetExtension{LocalCodes: []CodeRule{
		{ID: "site-bar-system", System: "LN|X", Codes: []string{"Y"}, Tags: []string{TagPathology}},
		{ID: "site-bar-code", System: "*", Codes: []string{"A|B"}, Tags: []string{TagGenetic}},
		{ID: "site-any", System: "*", Codes: []string{"22637-3"}, Tags: []string{TagImaging}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, rs := range []*RuleSet{DefaultRuleSet(), ext} {
		c, err := NewClassifier(rs)
		if err != nil {
			t.Fatal(err)
		}
		probes := map[string]bool{"": true, "NOT-A-CODE": true}
		for k := range c.codes {
			for i := 0; i < len(k); i++ {
				if k[i] == '|' {
					probes[k[i+1:]] = true
				}
			}
		}
		for x := range c.ctxCodes {
			probes[x] = true
		}
		for x := range probes {
			lr := c.loinc[x]
			if want := c.codes[sysLOINC+"|"+x]; !reflect.DeepEqual(lr.refs, want) {
				t.Errorf("loinc[%q].refs = %v, codes[LN|%s] = %v", x, lr.refs, x, want)
			}
			if lr.context != c.ctxCodes[x] {
				t.Errorf("loinc[%q].context = %v, ctxCodes = %v", x, lr.context, c.ctxCodes[x])
			}
			if got, want := c.anySys[x], c.codes["*|"+x]; !reflect.DeepEqual(got, want) {
				t.Errorf("anySys[%q] = %v, codes[*|%s] = %v", x, got, x, want)
			}
		}
		for _, name := range []string{"LN", "LNC", "I10", "ICDO3", "SCT", "L", ""} {
			if got, want := c.systemClass(name), c.systems[name]; got != want {
				t.Errorf("systemClass(%q) = %q, systems = %q", name, got, want)
			}
		}
		if len(c.loinc) == 0 {
			t.Error("no LOINC code rules: nothing compared")
		}
	}
}
