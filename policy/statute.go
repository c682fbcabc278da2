package policy

import "sort"

// Statute is a shipped state-law preset: a documented example of a
// JurisdictionRule. Presets are never applied on their own; a jurisdiction in
// the configuration must name one.
type Statute struct {
	// Name is the preset's name, e.g. "US-KY-KRS-333.152".
	Name string
	// Jurisdiction is the state, e.g. "US-KY".
	Jurisdiction string
	// Summary restates the rule in one sentence.
	Summary string
	// Rule is the rule the preset stands for.
	Rule JurisdictionRule
}

// CounselNote is recorded with every preset-based basis: the presets are
// engineering readings of statute text, not legal advice.
const CounselNote = "shipped preset: counsel must confirm before use"

func boolPtr(b bool) *bool { return &b }

// malignancyLikely are the tag combinations used for "pathology or radiology
// reports that have a reasonable likelihood of showing a finding of
// malignancy": a pathology, cytology or imaging result with a malignant or
// suspected-malignant finding. Sites whose counsel reads the statute as
// covering every such report (the likelihood judged at ordering) should list
// [pathology], [cytology] and [imaging] alone.
var malignancyLikely = [][]string{
	{TagPathology, TagMalignancy}, {TagPathology, TagSuspectedMalignancy},
	{TagCytology, TagMalignancy}, {TagCytology, TagSuspectedMalignancy},
	{TagImaging, TagMalignancy}, {TagImaging, TagSuspectedMalignancy},
}

func withGenetic(extra ...[]string) [][]string {
	out := append([][]string(nil), malignancyLikely...)
	out = append(out, []string{TagGenetic})
	return append(out, extra...)
}

// Statutes are the shipped presets by name.
var Statutes = map[string]Statute{
	"US-KY-KRS-333.152": {
		Name:         "US-KY-KRS-333.152",
		Jurisdiction: "US-KY",
		Summary: "Pathology or radiology reports with a reasonable likelihood of showing malignancy, and tests " +
			"that could reveal genetic markers, are not disclosed through the electronic record until 72 hours " +
			"after finalisation unless the health care provider directs earlier release.",
		Rule: JurisdictionRule{
			Citation:                  "Ky. Rev. Stat. § 333.152(2)",
			AppliesTo:                 withGenetic(),
			Clock:                     Clock{Hours: 72},
			ProviderMayReleaseEarlier: boolPtr(true),
			Note:                      CounselNote,
			// Most of Kentucky keeps Eastern time; its western counties
			// keep Central: set facility_time_zones for facilities there.
			TimeZone: "America/New_York",
		},
	},
	"US-MT-MCA-50-16-806": {
		Name:         "US-MT-MCA-50-16-806",
		Jurisdiction: "US-MT",
		Summary: "Results of the covered tests (pathology and radiology likely to show malignancy, genetic tests, " +
			"HIV and hepatitis) are released to the patient portal 72 hours after finalisation or on the provider's " +
			"release, whichever comes first.",
		Rule: JurisdictionRule{
			Citation:                  "Mont. Code Ann. § 50-16-806",
			AppliesTo:                 withGenetic([]string{"hiv"}, []string{"hepatitis"}),
			Clock:                     Clock{Hours: 72},
			ProviderMayReleaseEarlier: boolPtr(true),
			Note:                      CounselNote + "; the hiv and hepatitis tags need a rule set that emits them",
			TimeZone:                  "America/Denver",
		},
	},
	"US-TX-OCC-159.0062": {
		Name:         "US-TX-OCC-159.0062",
		Jurisdiction: "US-TX",
		Summary: "Pathology or radiology results likely to show malignancy, and genetic test results, are not " +
			"released electronically to the patient before the third day after finalisation.",
		Rule: JurisdictionRule{
			Citation:                  "Tex. Occ. Code § 159.0062",
			AppliesTo:                 withGenetic(),
			Clock:                     Clock{NotBeforeDay: 3},
			ProviderMayReleaseEarlier: boolPtr(false),
			Note:                      CounselNote,
			// Most of Texas keeps Central time; El Paso and Hudspeth
			// counties keep Mountain (America/Denver): set
			// facility_time_zones for facilities there.
			TimeZone: "America/Chicago",
		},
	},
}

// StatuteNames returns the preset names in order.
func StatuteNames() []string {
	names := make([]string, 0, len(Statutes))
	for n := range Statutes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// PresetFor returns the name of the shipped preset for jurisdiction j (e.g.
// "US-TX-OCC-159.0062" for "US-TX"), or "" when none is shipped.
func PresetFor(j string) string {
	for _, n := range StatuteNames() {
		if Statutes[n].Jurisdiction == j {
			return n
		}
	}
	return ""
}
