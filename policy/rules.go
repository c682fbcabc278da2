package policy

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Evidence layers, recorded in Evidence.Layer.
const (
	LayerServiceSection     = "service-section"
	LayerLOINC              = "loinc"
	LayerLocalCode          = "local-code"
	LayerServiceName        = "service-name"
	LayerCodedValue         = "coded-value"
	LayerStructuredCategory = "structured-category"
	LayerFreeText           = "free-text"
	LayerHistory            = "history"
)

// TagNone is used in rule sets for a rule that matches but gives no tag (for
// example ICD-10-CM D10–D36, benign neoplasms): the match only stops a broader
// rule from applying.
const TagNone = "none"

//go:embed rules/default.yaml
var defaultRuleSetYAML []byte

// RuleSet is the classifier's versioned rule data: every layer's rules,
// phrases and switches. It is loaded from YAML (see docs/RULESET.md) and is
// immutable once loaded; Extend returns a new RuleSet.
type RuleSet struct {
	// Version identifies the rule set in every decision, e.g. "2026.11.0".
	// Extend appends "+local.<hash>" naming the extension's content.
	VersionID string `yaml:"version"`
	// Released is the release date of this version (YYYY-MM-DD).
	Released string `yaml:"released"`
	// Description says what the rule set is for.
	Description string `yaml:"description"`
	// Settings are scope windows and switches.
	Settings Settings `yaml:"settings"`
	// ServiceSections is layer 1: OBR-24 (HL7 table 0074) codes to tags.
	ServiceSections []CodeRule `yaml:"service_sections"`
	// Codes is layer 2: LOINC and local codes on OBR-4 and OBX-3.
	Codes []CodeRule `yaml:"codes"`
	// Names are identifier texts (OBR-4, OBX-3 text) that give a tag where the
	// code is local or missing, e.g. "PSA" or "CT CHEST".
	Names []PhraseGroup `yaml:"names"`
	// Coded is layer 3: coded values in OBX-5 and DG1-3.
	Coded CodedRules `yaml:"coded"`
	// Categories is layer 4: structured categories written as text (BI-RADS…).
	Categories []CategoryRule `yaml:"categories"`
	// Lexicon is layer 5 (and the text forms of layer 4): terms, negation,
	// hedge and context triggers, termination terms, section headers.
	Lexicon []PhraseGroup `yaml:"lexicon"`
	// Abbreviations are the shorthand of layer 5 ("SCC", "ca.", "AML"): each
	// names its expansion, and most count only where the text is a diagnosis
	// (see AbbreviationContext and docs/RULESET.md).
	Abbreviations []Abbreviation `yaml:"abbreviations"`
}

// Abbreviation is one curated shorthand for a finding, with its expansion.
type Abbreviation struct {
	ID string `yaml:"id"`
	// Tag is the tag the abbreviation gives, like a lexicon term's.
	Tag string `yaml:"tag"`
	// Expansion is what the abbreviation stands for; the evidence shows it
	// ("abbreviation: squamous cell carcinoma").
	Expansion string `yaml:"expansion"`
	// Forms are the written forms. A form with an upper-case letter matches
	// only that exact case ("ALL" is not "all"); a form in lower case
	// matches any case ("ca" is "CA", "Ca" and "ca").
	Forms []string `yaml:"forms"`
	// Context is "diagnosis" (the default: counts only where the text is a
	// diagnosis) or "any" (the form is unambiguous in a result, e.g. NSCLC).
	Context string `yaml:"context,omitempty"`
	// Collides names what else the form is written for, each adding a
	// check: "analyte" (a lab test: CA is calcium and cancer antigen),
	// "unit" (MM is millimetres), "word" (ALL is an English word), "address"
	// (CA and FL are US states).
	Collides []string `yaml:"collides,omitempty"`
	// NotBefore are words that, right before the form, make it something
	// else ("anti" GBM: glomerular basement membrane).
	NotBefore []string `yaml:"not_before,omitempty"`
	// NotAfter are words that, right after the form, make it something else
	// (MCL "tear": medial collateral ligament).
	NotAfter []string `yaml:"not_after,omitempty"`
	Note     string   `yaml:"note,omitempty"`
}

// AbbreviationContext holds the word lists that decide whether an
// abbreviation stands where a diagnosis is written.
type AbbreviationContext struct {
	// DiagnosisSections are OBX-3 LOINC codes whose text is a diagnosis or
	// impression. An OBX-3 text that holds a diagnosis header ("Final
	// diagnosis", "Impression") counts too.
	DiagnosisSections []string `yaml:"diagnosis_sections"`
	// Leads are words that, right before an abbreviation, show it names a
	// diagnosis ("invasive" ca, "hepatocellular" ca., "smoldering" MM).
	Leads []string `yaml:"leads"`
	// Followers are words that, right after an abbreviation (a comma
	// between is allowed), show it names a diagnosis: a grade, a stage, a
	// differentiation, "with" ("AML with NPM1 mutation").
	Followers []string `yaml:"followers"`
	// AnalyteBefore are words that, before an abbreviation that collides
	// with an analyte, make it the analyte ("ionized" Ca, "serum" CA).
	AnalyteBefore []string `yaml:"analyte_before"`
	// AnalyteAfter are words that, after it, make it the analyte (CA
	// "antigen", Ca "level").
	AnalyteAfter []string `yaml:"analyte_after"`
}

// Settings hold the rule set's tunables.
type Settings struct {
	// PreWindow is how many words after a pre-trigger (negation, hedge,
	// context) its scope reaches, within the sentence. Default 12.
	PreWindow int `yaml:"pre_window"`
	// PostWindow is how many words before a post-trigger its scope reaches,
	// within the clause (commas end it). Default 6.
	PostWindow int `yaml:"post_window"`
	// MaxEvidencePerTag caps the evidence kept per tag. Default 50.
	MaxEvidencePerTag int `yaml:"max_evidence_per_tag"`
	// UncertainNeoplasm is the tag for neoplasms of uncertain or unknown
	// behaviour (ICD-10-CM D37–D49, ICD-9-CM 235–239): suspected-malignancy,
	// malignancy or none.
	UncertainNeoplasm string `yaml:"uncertain_neoplasm"`
	// AbnormalFlags are the OBX-8 codes that mark a tumour-marker result as
	// abnormal in the evidence.
	AbnormalFlags []string `yaml:"abnormal_flags"`
	// DisabledTags are tags this rule set never gives.
	DisabledTags []string `yaml:"disabled_tags"`
	// ContextSections are LOINC codes on OBX-3 whose text is clinical context
	// (history, indication, specimen label), never a diagnosis.
	ContextSections []string `yaml:"context_sections"`
	// AffirmativeValues are OBX-5 values that affirm a synoptic label in OBX-3
	// ("Invasive carcinoma: present").
	AffirmativeValues []string `yaml:"affirmative_values"`
	// AbbreviationContext decides where abbreviations count.
	AbbreviationContext AbbreviationContext `yaml:"abbreviation_context"`
}

// CodeRule maps codes in one coding system to tags.
type CodeRule struct {
	ID string `yaml:"id"`
	// System is the HL7 table 0396 coding system name ("LN"), or "" for
	// OBR-24 rules. Local codes name the sender's system ("99LAB", "L").
	System string   `yaml:"system,omitempty"`
	Codes  []string `yaml:"codes"`
	Tags   []string `yaml:"tags"`
	// Section is the role of an OBX-3 code for its text: "context" (clinical
	// history, indication) or "" (may hold a diagnosis).
	Section string `yaml:"section,omitempty"`
	// Note says where the codes come from.
	Note string `yaml:"note,omitempty"`
}

// PhraseGroup is a list of phrases with one meaning.
type PhraseGroup struct {
	ID string `yaml:"id"`
	// Kind is one of: term, pseudo, negation-pre, negation-post, hedge-pre,
	// hedge-post, context-pre, termination, block, header (lexicon), or
	// name, exclude (names).
	Kind string `yaml:"kind"`
	// Tag is the tag given by a term or name ("malignancy").
	Tag string `yaml:"tag,omitempty"`
	// Tags are extra tags given by a name.
	Tags []string `yaml:"tags,omitempty"`
	// Layer overrides the evidence layer of a term (structured-category for
	// the Bethesda cervical terms); default free-text.
	Layer string `yaml:"layer,omitempty"`
	// Context is the kind of a context-pre trigger (history, known, family,
	// query, label) or, for a header, whether the section is context ("history") or
	// not ("").
	Context string `yaml:"context,omitempty"`
	// Prior marks a term that means the malignancy was already known
	// (BI-RADS 6 style): it counts as prior malignancy for new-cancer.
	Prior bool `yaml:"prior,omitempty"`
	// Prefix requires a name to start its text (modality prefixes "CT ").
	Prefix bool `yaml:"prefix,omitempty"`
	// ServiceOnly applies a name to OBR-4 only, not to OBX-3 (a pathology
	// report's OBX-3 may say "Diagnostic imaging for identification...").
	ServiceOnly bool `yaml:"service_only,omitempty"`
	// Requires lists tags another rule must already have given in the same
	// order for this name to count (beta-hCG counts as a tumour marker only
	// beside another tumour marker).
	Requires []string `yaml:"requires,omitempty"`
	// Window overrides the rule set's pre/post window for a trigger.
	Window  int      `yaml:"window,omitempty"`
	Phrases []string `yaml:"phrases"`
	Note    string   `yaml:"note,omitempty"`
}

// CodedRules is layer 3.
type CodedRules struct {
	ICD10  RangeRules  `yaml:"icd10"`
	ICD9   RangeRules  `yaml:"icd9"`
	ICDO3  ICDO3Rules  `yaml:"icdo3"`
	SNOMED SNOMEDRules `yaml:"snomed"`
}

// RangeRules are code ranges in one classification (ICD-10-CM, ICD-9-CM).
type RangeRules struct {
	// Systems are the HL7 table 0396 names and OIDs of the classification.
	Systems []string    `yaml:"systems"`
	Ranges  []RangeRule `yaml:"ranges"`
}

// RangeRule is one inclusive range of codes. Codes are compared without the
// dot on the length of the bound: from C00 to C96 holds C50.911. The first
// matching range in the list wins, so put exceptions first.
type RangeRule struct {
	ID   string `yaml:"id"`
	From string `yaml:"from"`
	To   string `yaml:"to"`
	// Tag is malignancy, suspected-malignancy, none, or "uncertain" (use
	// settings.uncertain_neoplasm).
	Tag string `yaml:"tag"`
	// Prior marks history codes (Z85): prior malignancy, not a new one.
	Prior bool   `yaml:"prior,omitempty"`
	Note  string `yaml:"note,omitempty"`
}

// ICDO3Rules classify ICD-O-3 morphology codes by their behaviour digit.
type ICDO3Rules struct {
	ID         string            `yaml:"id"`
	Systems    []string          `yaml:"systems"`
	Behaviours map[string]string `yaml:"behaviours"` // "3": malignancy
}

// SNOMEDRules is a pre-expanded list of SNOMED CT malignancy concepts.
type SNOMEDRules struct {
	ID      string   `yaml:"id"`
	Systems []string `yaml:"systems"`
	// Edition and Version name the SNOMED CT release the list was expanded from.
	Edition  string          `yaml:"edition"`
	Version  string          `yaml:"version"`
	Concepts []SNOMEDConcept `yaml:"concepts"`
}

// SNOMEDConcept is one concept of the list.
type SNOMEDConcept struct {
	Code    string `yaml:"code"`
	Display string `yaml:"display,omitempty"`
	Tag     string `yaml:"tag,omitempty"` // default malignancy
	Prior   bool   `yaml:"prior,omitempty"`
}

// CategoryRule is a structured category system written as text: a keyword
// followed by a category value ("BI-RADS 4A", "Bethesda category VI").
type CategoryRule struct {
	ID       string   `yaml:"id"`
	System   string   `yaml:"system"`
	Keywords []string `yaml:"keywords"`
	// Values maps a category value (lower case, "4a", "vi", "m") to a tag or
	// none. Values not listed are ignored.
	Values map[string]string `yaml:"values"`
	// Prior lists values that mean a malignancy already known (BI-RADS 6).
	Prior []string `yaml:"prior,omitempty"`
	Note  string   `yaml:"note,omitempty"`
}

// RuleSetExtension is what a site adds to a rule set from its configuration
// (the "rules" section): local codes, extra phrases and per-tag switches. It is
// decoded strictly (see DecodeRuleSetExtension).
type RuleSetExtension struct {
	// LocalCodes map the sender's own codes (OBR-4, OBX-3, OBX-5, DG1-3) to tags.
	LocalCodes []CodeRule `yaml:"local_codes"`
	// Names add identifier names (OBR-4/OBX-3 text) to tags.
	Names []PhraseGroup `yaml:"names"`
	// Phrases add lexicon phrase groups; they take precedence over the
	// defaults when the same phrase appears in both.
	Phrases []PhraseGroup `yaml:"phrases"`
	// Tags switch tags on (true) or off (false).
	Tags map[string]bool `yaml:"tags"`
	// UncertainNeoplasm overrides settings.uncertain_neoplasm.
	UncertainNeoplasm string `yaml:"uncertain_neoplasm"`
	// ContextSections add OBX-3 codes whose text is clinical context.
	ContextSections []string `yaml:"context_sections"`
	// Abbreviations add abbreviation entries (the site's own shorthand);
	// their forms win over default forms that normalise the same. Omitted
	// from the extension's canonical YAML when empty, so the version of an
	// extension without them is what it was before they existed.
	Abbreviations []Abbreviation `yaml:"abbreviations,omitempty"`
}

// ErrRuleSet is wrapped by every rule-set loading and validation error.
var ErrRuleSet = errors.New("invalid rule set")

// DefaultRuleSet returns the embedded default rule set (policy/rules/default.yaml).
// It panics if the embedded file is invalid, which the tests rule out.
func DefaultRuleSet() *RuleSet {
	rs, err := LoadRuleSet(defaultRuleSetYAML)
	if err != nil {
		panic("policy: embedded default rule set: " + err.Error())
	}
	return rs
}

// DefaultRuleSetYAML returns a copy of the embedded default rule set file.
func DefaultRuleSetYAML() []byte { return bytes.Clone(defaultRuleSetYAML) }

// Version returns the rule set's version string, recorded in every decision.
func (rs *RuleSet) Version() string {
	if rs == nil {
		return ""
	}
	return rs.VersionID
}

// LoadRuleSet decodes a rule set from YAML strictly: unknown keys fail, and
// every error names the key and its line.
func LoadRuleSet(data []byte) (*RuleSet, error) {
	var rs RuleSet
	if err := decodeStrict(data, &rs); err != nil {
		return nil, err
	}
	var root yaml.Node
	_ = yaml.Unmarshal(data, &root)
	if err := rs.validate(&root); err != nil {
		return nil, err
	}
	rs.applyDefaults()
	return &rs, nil
}

// DecodeRuleSetExtension decodes a rule-set extension strictly from YAML.
func DecodeRuleSetExtension(data []byte) (RuleSetExtension, error) {
	var ext RuleSetExtension
	if err := decodeStrict(data, &ext); err != nil {
		return RuleSetExtension{}, err
	}
	return ext, nil
}

func decodeStrict(data []byte, out any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(out); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: empty document", ErrRuleSet)
		}
		return fmt.Errorf("%w: %s", ErrRuleSet, cleanYAMLErr(err))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: more than one YAML document", ErrRuleSet)
	}
	return nil
}

var yamlTypeErrPrefix = regexp.MustCompile(`^yaml: unmarshal errors:\n\s*`)

func cleanYAMLErr(err error) string {
	s := yamlTypeErrPrefix.ReplaceAllString(err.Error(), "")
	s = strings.TrimPrefix(s, "yaml: ")
	s = strings.ReplaceAll(s, "\n  ", "; ")
	return s
}

// path element for locating a key's line in the YAML tree.
type pathElem struct {
	key   string
	index int // -1 when key is used
}

func keyElem(k string) pathElem { return pathElem{key: k, index: -1} }
func idxElem(i int) pathElem    { return pathElem{index: i} }

// lineOf finds the line of the node at path (best effort; 0 when unknown).
func lineOf(root *yaml.Node, path ...pathElem) int {
	n := root
	if n == nil {
		return 0
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, p := range path {
		switch {
		case p.index < 0 && n.Kind == yaml.MappingNode:
			found := false
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == p.key {
					line = n.Content[i].Line
					n = n.Content[i+1]
					found = true
					break
				}
			}
			if !found {
				return line
			}
		case p.index >= 0 && n.Kind == yaml.SequenceNode && p.index < len(n.Content):
			n = n.Content[p.index]
			line = n.Line
		default:
			return line
		}
	}
	return line
}

type validator struct {
	root *yaml.Node
	errs []error
	ids  map[string]int
}

func (v *validator) fail(msg string, path ...pathElem) {
	var names []string
	for _, p := range path {
		if p.index >= 0 {
			if len(names) > 0 {
				names[len(names)-1] += "[" + strconv.Itoa(p.index) + "]"
				continue
			}
			names = append(names, "["+strconv.Itoa(p.index)+"]")
			continue
		}
		names = append(names, p.key)
	}
	key := strings.Join(names, ".")
	if line := lineOf(v.root, path...); line > 0 {
		v.errs = append(v.errs, fmt.Errorf("%w: line %d: %s: %s", ErrRuleSet, line, key, msg))
		return
	}
	v.errs = append(v.errs, fmt.Errorf("%w: %s: %s", ErrRuleSet, key, msg))
}

func (v *validator) id(id string, path ...pathElem) {
	if id == "" {
		v.fail("id is required", path...)
		return
	}
	if v.ids[id] > 0 {
		v.fail(fmt.Sprintf("duplicate rule id %q", id), append(path, keyElem("id"))...)
	}
	v.ids[id]++
}

var knownKinds = map[string]patKind{
	"term": kindTerm, "pseudo": kindPseudo, "negation-pre": kindNegPre,
	"negation-post": kindNegPost, "hedge-pre": kindHedgePre, "hedge-post": kindHedgePost,
	"context-pre": kindContextPre, "termination": kindTermination, "block": kindBlock,
	"header": kindHeader,
}

var knownContexts = map[string]bool{"history": true, "known": true, "family": true, "query": true, "label": true}

// knownCollisions are the values of Abbreviation.Collides.
var knownCollisions = map[string]bool{"analyte": true, "unit": true, "word": true, "address": true}

var validTagName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,63}$`)

func (v *validator) tag(t string, allowNone bool, path ...pathElem) {
	if t == TagNone && allowNone {
		return
	}
	if !validTagName.MatchString(t) || t == TagNone {
		v.fail(fmt.Sprintf("invalid tag %q (lower-case letters, digits and hyphens)", t), path...)
	}
}

func (v *validator) phrases(g PhraseGroup, path ...pathElem) {
	if len(g.Phrases) == 0 {
		v.fail("at least one phrase is required", append(path, keyElem("phrases"))...)
	}
	for i, p := range g.Phrases {
		n := normalize(p)
		if n == "" {
			v.fail("empty phrase", append(path, keyElem("phrases"), idxElem(i))...)
		} else if len(n) > maxPattern {
			v.fail(fmt.Sprintf("phrase longer than %d bytes", maxPattern), append(path, keyElem("phrases"), idxElem(i))...)
		}
	}
}

func (v *validator) lexGroup(g PhraseGroup, path ...pathElem) {
	v.id(g.ID, path...)
	k, ok := knownKinds[g.Kind]
	if !ok {
		v.fail(fmt.Sprintf("unknown kind %q", g.Kind), append(path, keyElem("kind"))...)
	}
	if k == kindTerm {
		v.tag(g.Tag, false, append(path, keyElem("tag"))...)
	} else if g.Tag != "" {
		v.fail("only a term has a tag", append(path, keyElem("tag"))...)
	}
	if g.Layer != "" && g.Layer != LayerFreeText && g.Layer != LayerStructuredCategory {
		v.fail(fmt.Sprintf("unknown layer %q (free-text or structured-category)", g.Layer), append(path, keyElem("layer"))...)
	}
	if g.Context != "" && !(k == kindContextPre && knownContexts[g.Context]) && !(k == kindHeader && (g.Context == "history" || g.Context == "diagnosis")) {
		v.fail(fmt.Sprintf("context %q does not fit kind %q", g.Context, g.Kind), append(path, keyElem("context"))...)
	}
	if k == kindContextPre && g.Context == "" {
		v.fail("context-pre needs context: history, family, query or label", path...)
	}
	if g.Window < 0 || g.Window > 100 {
		v.fail("window must be 0..100", append(path, keyElem("window"))...)
	}
	if g.Prefix || g.ServiceOnly || len(g.Requires) > 0 || len(g.Tags) > 0 {
		v.fail("prefix, service_only, requires and tags are for names only", path...)
	}
	v.phrases(g, path...)
}

func (v *validator) abbreviation(a Abbreviation, path ...pathElem) {
	v.id(a.ID, path...)
	v.tag(a.Tag, false, append(path, keyElem("tag"))...)
	if strings.TrimSpace(a.Expansion) == "" {
		v.fail("expansion is required", path...)
	}
	switch a.Context {
	case "", "diagnosis", "any":
	default:
		v.fail(fmt.Sprintf("unknown context %q (diagnosis or any)", a.Context), append(path, keyElem("context"))...)
	}
	for i, c := range a.Collides {
		if !knownCollisions[c] {
			v.fail(fmt.Sprintf("unknown collision %q (analyte, unit, word or address)", c), append(path, keyElem("collides"), idxElem(i))...)
		}
	}
	if len(a.Forms) == 0 {
		v.fail("at least one form is required", append(path, keyElem("forms"))...)
	}
	for i, f := range a.Forms {
		n := normalize(f)
		switch {
		case n == "":
			v.fail("empty form", append(path, keyElem("forms"), idxElem(i))...)
		case len(n) > maxPattern:
			v.fail(fmt.Sprintf("form longer than %d bytes", maxPattern), append(path, keyElem("forms"), idxElem(i))...)
		case !isWordByte(n[0]) || !isWordByte(n[len(n)-1]):
			v.fail("a form must start and end with a letter or digit", append(path, keyElem("forms"), idxElem(i))...)
		}
	}
	for _, l := range [][]string{a.NotBefore, a.NotAfter} {
		for _, w := range l {
			if normalize(w) == "" {
				v.fail("empty word in not_before or not_after", path...)
			}
		}
	}
}

func (v *validator) nameGroup(g PhraseGroup, path ...pathElem) {
	v.id(g.ID, path...)
	switch g.Kind {
	case "name", "":
		if g.Tag == "" && len(g.Tags) == 0 {
			v.fail("a name needs tag or tags", path...)
		}
		if g.Tag != "" {
			v.tag(g.Tag, false, append(path, keyElem("tag"))...)
		}
		for i, t := range g.Tags {
			v.tag(t, false, append(path, keyElem("tags"), idxElem(i))...)
		}
	case "exclude":
		if g.Tag == "" {
			v.fail("an exclude names the tag it cancels", path...)
		}
	default:
		v.fail(fmt.Sprintf("unknown kind %q (name or exclude)", g.Kind), append(path, keyElem("kind"))...)
	}
	for i, t := range g.Requires {
		v.tag(t, false, append(path, keyElem("requires"), idxElem(i))...)
	}
	v.phrases(g, path...)
}

func (v *validator) codeRule(r CodeRule, needSystem bool, path ...pathElem) {
	v.id(r.ID, path...)
	if needSystem && strings.TrimSpace(r.System) == "" {
		v.fail("system is required", path...)
	}
	if len(r.Codes) == 0 {
		v.fail("at least one code is required", append(path, keyElem("codes"))...)
	}
	for i, c := range r.Codes {
		if strings.TrimSpace(c) == "" {
			v.fail("empty code", append(path, keyElem("codes"), idxElem(i))...)
		}
	}
	if len(r.Tags) == 0 && r.Section == "" {
		v.fail("tags or section is required", path...)
	}
	for i, t := range r.Tags {
		v.tag(t, false, append(path, keyElem("tags"), idxElem(i))...)
	}
	if r.Section != "" && r.Section != "context" {
		v.fail(fmt.Sprintf("unknown section %q (context)", r.Section), append(path, keyElem("section"))...)
	}
}

var rangeBound = regexp.MustCompile(`^[A-Z0-9]{1,7}$`)

func (v *validator) ranges(rr RangeRules, name string) {
	for i, r := range rr.Ranges {
		p := []pathElem{keyElem("coded"), keyElem(name), keyElem("ranges"), idxElem(i)}
		v.id(r.ID, p...)
		f, t := normCode(r.From), normCode(r.To)
		if !rangeBound.MatchString(f) {
			v.fail(fmt.Sprintf("invalid bound %q", r.From), append(p, keyElem("from"))...)
		}
		if !rangeBound.MatchString(t) {
			v.fail(fmt.Sprintf("invalid bound %q", r.To), append(p, keyElem("to"))...)
		}
		if len(f) == len(t) && f > t {
			v.fail(fmt.Sprintf("from %q is after to %q", r.From, r.To), p...)
		}
		if r.Tag != "uncertain" {
			v.tag(r.Tag, true, append(p, keyElem("tag"))...)
		}
	}
}

func (rs *RuleSet) validate(root *yaml.Node) error {
	v := &validator{root: root, ids: map[string]int{}}
	if strings.TrimSpace(rs.VersionID) == "" {
		v.fail("version is required", keyElem("version"))
	}
	s := rs.Settings
	if s.PreWindow < 0 || s.PreWindow > 100 {
		v.fail("must be 0..100", keyElem("settings"), keyElem("pre_window"))
	}
	if s.PostWindow < 0 || s.PostWindow > 100 {
		v.fail("must be 0..100", keyElem("settings"), keyElem("post_window"))
	}
	if s.MaxEvidencePerTag < 0 {
		v.fail("must not be negative", keyElem("settings"), keyElem("max_evidence_per_tag"))
	}
	switch s.UncertainNeoplasm {
	case "", TagSuspectedMalignancy, TagMalignancy, TagNone:
	default:
		v.fail(fmt.Sprintf("%q is not suspected-malignancy, malignancy or none", s.UncertainNeoplasm), keyElem("settings"), keyElem("uncertain_neoplasm"))
	}
	for i, t := range s.DisabledTags {
		v.tag(t, false, keyElem("settings"), keyElem("disabled_tags"), idxElem(i))
	}
	for i, r := range rs.ServiceSections {
		v.codeRule(r, false, keyElem("service_sections"), idxElem(i))
	}
	for i, r := range rs.Codes {
		v.codeRule(r, true, keyElem("codes"), idxElem(i))
	}
	for i, g := range rs.Names {
		v.nameGroup(g, keyElem("names"), idxElem(i))
	}
	v.ranges(rs.Coded.ICD10, "icd10")
	v.ranges(rs.Coded.ICD9, "icd9")
	if len(rs.Coded.ICDO3.Behaviours) > 0 {
		v.id(rs.Coded.ICDO3.ID, keyElem("coded"), keyElem("icdo3"))
		for b, t := range rs.Coded.ICDO3.Behaviours {
			if len(b) != 1 || b[0] < '0' || b[0] > '9' {
				v.fail(fmt.Sprintf("behaviour %q is not one digit", b), keyElem("coded"), keyElem("icdo3"), keyElem("behaviours"))
			}
			v.tag(t, true, keyElem("coded"), keyElem("icdo3"), keyElem("behaviours"), keyElem(b))
		}
	}
	if len(rs.Coded.SNOMED.Concepts) > 0 {
		v.id(rs.Coded.SNOMED.ID, keyElem("coded"), keyElem("snomed"))
		if rs.Coded.SNOMED.Version == "" {
			v.fail("version is required for the SNOMED CT list", keyElem("coded"), keyElem("snomed"), keyElem("version"))
		}
		seen := map[string]bool{}
		for i, c := range rs.Coded.SNOMED.Concepts {
			p := []pathElem{keyElem("coded"), keyElem("snomed"), keyElem("concepts"), idxElem(i)}
			if !isDigits(c.Code) || len(c.Code) < 6 || len(c.Code) > 18 {
				v.fail(fmt.Sprintf("invalid SNOMED CT identifier %q", c.Code), append(p, keyElem("code"))...)
			}
			if seen[c.Code] {
				v.fail(fmt.Sprintf("duplicate concept %q", c.Code), append(p, keyElem("code"))...)
			}
			seen[c.Code] = true
			if c.Tag != "" {
				v.tag(c.Tag, true, append(p, keyElem("tag"))...)
			}
		}
	}
	for i, c := range rs.Categories {
		p := []pathElem{keyElem("categories"), idxElem(i)}
		v.id(c.ID, p...)
		if len(c.Keywords) == 0 {
			v.fail("at least one keyword is required", append(p, keyElem("keywords"))...)
		}
		for j, k := range c.Keywords {
			if n := normalize(k); n == "" || len(n) > maxPattern {
				v.fail("invalid keyword", append(p, keyElem("keywords"), idxElem(j))...)
			}
		}
		if len(c.Values) == 0 {
			v.fail("at least one value is required", append(p, keyElem("values"))...)
		}
		for val, t := range c.Values {
			if val == "" || val != strings.ToLower(val) || strings.ContainsAny(val, " \t") {
				v.fail(fmt.Sprintf("value %q must be lower case without spaces", val), append(p, keyElem("values"))...)
			}
			v.tag(t, true, append(p, keyElem("values"), keyElem(val))...)
		}
		for j, val := range c.Prior {
			if _, ok := c.Values[val]; !ok {
				v.fail(fmt.Sprintf("prior value %q is not in values", val), append(p, keyElem("prior"), idxElem(j))...)
			}
		}
	}
	for i, g := range rs.Lexicon {
		v.lexGroup(g, keyElem("lexicon"), idxElem(i))
	}
	for i, a := range rs.Abbreviations {
		v.abbreviation(a, keyElem("abbreviations"), idxElem(i))
	}
	for i, c := range s.ContextSections {
		if strings.TrimSpace(c) == "" {
			v.fail("empty code", keyElem("settings"), keyElem("context_sections"), idxElem(i))
		}
	}
	return errors.Join(v.errs...)
}

func (rs *RuleSet) applyDefaults() {
	if rs.Settings.PreWindow == 0 {
		rs.Settings.PreWindow = 12
	}
	if rs.Settings.PostWindow == 0 {
		rs.Settings.PostWindow = 6
	}
	if rs.Settings.MaxEvidencePerTag == 0 {
		rs.Settings.MaxEvidencePerTag = 50
	}
	if rs.Settings.UncertainNeoplasm == "" {
		rs.Settings.UncertainNeoplasm = TagSuspectedMalignancy
	}
}

// Extend returns a new rule set with ext applied: local codes, names and
// phrases are added (ext phrases win over default phrases that normalise the
// same), tag switches and the uncertain-neoplasm setting override. The new
// version is the base version with "+local.<12 hex digits of the extension's
// SHA-256>", so every decision names exactly which rules applied; an empty
// extension keeps the base version.
func (rs *RuleSet) Extend(ext RuleSetExtension) (*RuleSet, error) {
	if rs == nil {
		return nil, fmt.Errorf("%w: extending a nil rule set", ErrRuleSet)
	}
	out := rs.clone()
	// Validate the extension's parts under their own key names.
	v := &validator{ids: map[string]int{}}
	for _, id := range rs.allIDs() {
		v.ids[id]++
	}
	for i, r := range ext.LocalCodes {
		v.codeRule(r, true, keyElem("local_codes"), idxElem(i))
	}
	for i, g := range ext.Names {
		v.nameGroup(g, keyElem("names"), idxElem(i))
	}
	for i, g := range ext.Phrases {
		v.lexGroup(g, keyElem("phrases"), idxElem(i))
	}
	for i, a := range ext.Abbreviations {
		v.abbreviation(a, keyElem("abbreviations"), idxElem(i))
	}
	tagKeys := make([]string, 0, len(ext.Tags))
	for t := range ext.Tags {
		tagKeys = append(tagKeys, t)
	}
	sort.Strings(tagKeys)
	for _, t := range tagKeys {
		v.tag(t, false, keyElem("tags"), keyElem(t))
	}
	switch ext.UncertainNeoplasm {
	case "", TagSuspectedMalignancy, TagMalignancy, TagNone:
	default:
		v.fail(fmt.Sprintf("%q is not suspected-malignancy, malignancy or none", ext.UncertainNeoplasm), keyElem("uncertain_neoplasm"))
	}
	if err := errors.Join(v.errs...); err != nil {
		return nil, err
	}
	out.Codes = append(append([]CodeRule(nil), ext.LocalCodes...), out.Codes...)
	out.Names = append(append([]PhraseGroup(nil), ext.Names...), out.Names...)
	out.Lexicon = append(append([]PhraseGroup(nil), ext.Phrases...), out.Lexicon...)
	out.Abbreviations = append(append([]Abbreviation(nil), ext.Abbreviations...), out.Abbreviations...)
	out.Settings.ContextSections = append(out.Settings.ContextSections, ext.ContextSections...)
	if ext.UncertainNeoplasm != "" {
		out.Settings.UncertainNeoplasm = ext.UncertainNeoplasm
	}
	disabled := map[string]bool{}
	for _, t := range out.Settings.DisabledTags {
		disabled[t] = true
	}
	for _, t := range tagKeys {
		disabled[t] = !ext.Tags[t]
	}
	out.Settings.DisabledTags = out.Settings.DisabledTags[:0]
	for _, t := range sortedKeys(disabled) {
		if disabled[t] {
			out.Settings.DisabledTags = append(out.Settings.DisabledTags, t)
		}
	}
	if len(ext.LocalCodes) == 0 && len(ext.Names) == 0 && len(ext.Phrases) == 0 && len(ext.Tags) == 0 &&
		ext.UncertainNeoplasm == "" && len(ext.ContextSections) == 0 && len(ext.Abbreviations) == 0 {
		return out, nil // nothing added: the rules, and so the version, are the base's
	}
	canon, err := yaml.Marshal(ext)
	if err != nil {
		return nil, fmt.Errorf("%w: encoding extension: %w", ErrRuleSet, err)
	}
	sum := sha256.Sum256(canon)
	out.VersionID = rs.VersionID + "+local." + hex.EncodeToString(sum[:6])
	return out, nil
}

func (rs *RuleSet) allIDs() []string {
	var ids []string
	for _, r := range rs.ServiceSections {
		ids = append(ids, r.ID)
	}
	for _, r := range rs.Codes {
		ids = append(ids, r.ID)
	}
	for _, g := range rs.Names {
		ids = append(ids, g.ID)
	}
	for _, g := range rs.Lexicon {
		ids = append(ids, g.ID)
	}
	for _, a := range rs.Abbreviations {
		ids = append(ids, a.ID)
	}
	for _, c := range rs.Categories {
		ids = append(ids, c.ID)
	}
	for _, r := range rs.Coded.ICD10.Ranges {
		ids = append(ids, r.ID)
	}
	for _, r := range rs.Coded.ICD9.Ranges {
		ids = append(ids, r.ID)
	}
	ids = append(ids, rs.Coded.ICDO3.ID, rs.Coded.SNOMED.ID)
	return ids
}

func (rs *RuleSet) clone() *RuleSet {
	c := *rs
	c.Settings.DisabledTags = append([]string(nil), rs.Settings.DisabledTags...)
	c.Settings.ContextSections = append([]string(nil), rs.Settings.ContextSections...)
	c.Codes = append([]CodeRule(nil), rs.Codes...)
	c.Names = append([]PhraseGroup(nil), rs.Names...)
	c.Lexicon = append([]PhraseGroup(nil), rs.Lexicon...)
	return &c
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// normCode upper-cases a code and removes dots and spaces ("c50.911" -> "C50911").
func normCode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.' || c == ' ':
			continue
		case c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}
