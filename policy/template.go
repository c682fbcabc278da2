package policy

import "strings"

// noteOrder is the precedence in which a tag's note is chosen: the most
// specific and most serious finding speaks first.
var noteOrder = []string{
	TagNewCancer, TagMalignancy, TagSuspectedMalignancy, TagGenetic,
	TagTumorMarker, TagCytology, TagPathology, TagImaging,
}

// DefaultTemplates are the built-in plain-language notes: tag → language →
// text. They are deliberately calm and say what to do next; they never state
// a diagnosis (the result does that, and a clinician should explain it).
var DefaultTemplates = map[string]map[string]string{
	TagNewCancer: {
		"en": "This result contains important findings. Your care team will contact you to talk about what it means and the next steps. You may prefer to wait and read it with them.",
		"es": "Este resultado contiene hallazgos importantes. Su equipo de atención se comunicará con usted para hablar de lo que significa y de los próximos pasos. Quizás prefiera esperar y leerlo con ellos.",
	},
	TagMalignancy: {
		"en": "This result contains important findings. Your care team will contact you to talk about what it means and the next steps. You may prefer to wait and read it with them.",
		"es": "Este resultado contiene hallazgos importantes. Su equipo de atención se comunicará con usted para hablar de lo que significa y de los próximos pasos. Quizás prefiera esperar y leerlo con ellos.",
	},
	TagSuspectedMalignancy: {
		"en": "This result may need more tests or a conversation with your care team before anything is certain. Your care team will contact you about next steps.",
		"es": "Es posible que este resultado necesite más pruebas o una conversación con su equipo de atención antes de tener certeza. Su equipo de atención se comunicará con usted sobre los próximos pasos.",
	},
	TagGenetic: {
		"en": "This is a genetic test result. Genetic results can be complex and may matter for your family too. Your care team or a genetic counsellor can explain it.",
		"es": "Este es un resultado de una prueba genética. Los resultados genéticos pueden ser complejos y también pueden ser importantes para su familia. Su equipo de atención o un asesor genético puede explicárselo.",
	},
	TagTumorMarker: {
		"en": "Tumour marker levels can be raised for many reasons, not only cancer. Your care team will explain what this result means for you.",
		"es": "Los niveles de marcadores tumorales pueden estar elevados por muchas razones, no solo por cáncer. Su equipo de atención le explicará lo que este resultado significa para usted.",
	},
	TagPathology: {
		"en": "This is a pathology report, written for doctors. Your care team will explain it to you.",
		"es": "Este es un informe de patología, escrito para médicos. Su equipo de atención se lo explicará.",
	},
	TagCytology: {
		"en": "This is a cytology report, written for doctors. Your care team will explain it to you.",
		"es": "Este es un informe de citología, escrito para médicos. Su equipo de atención se lo explicará.",
	},
	TagImaging: {
		"en": "This is an imaging report, written for doctors. Your care team will explain it to you.",
		"es": "Este es un informe de imágenes, escrito para médicos. Su equipo de atención se lo explicará.",
	},
}

// iso639_2to1 maps common ISO 639-2 (three-letter, B and T forms) codes seen in
// PID-15 to ISO 639-1.
var iso639_2to1 = map[string]string{
	"eng": "en", "spa": "es", "fra": "fr", "fre": "fr", "deu": "de", "ger": "de",
	"zho": "zh", "chi": "zh", "vie": "vi", "kor": "ko", "rus": "ru", "ara": "ar",
	"por": "pt", "ita": "it", "pol": "pl", "jpn": "ja", "hin": "hi", "tgl": "tl",
	"hat": "ht", "fas": "fa", "per": "fa", "urd": "ur", "ben": "bn", "pan": "pa",
	"guj": "gu", "som": "so", "amh": "am", "nld": "nl", "dut": "nl", "ell": "el",
	"gre": "el", "heb": "he", "tur": "tr", "ukr": "uk", "yid": "yi", "nav": "nv",
}

// NormalizeLanguage turns a PID-15 value ("en", "EN", "eng", "es-US",
// "SPA^Spanish^ISO6392", "English") into an ISO 639-1 code where it can, else
// the lower-cased primary subtag. It returns "" for an empty value.
func NormalizeLanguage(v string) string {
	v = strings.TrimSpace(v)
	if i := strings.IndexAny(v, "^&"); i >= 0 {
		v = v[:i]
	}
	if i := strings.IndexAny(v, "-_"); i >= 0 {
		v = v[:i]
	}
	v = strings.ToLower(strings.TrimSpace(v))
	switch v {
	case "english":
		return "en"
	case "spanish", "español", "espanol":
		return "es"
	}
	if len(v) == 3 {
		if two, ok := iso639_2to1[v]; ok {
			return two
		}
	}
	return v
}

// note picks the plain-language note for the highest-precedence tag that has
// a template: in the patient's language when there is one, else in the
// default language. It returns "", "" when no tag has a template.
func (e *Engine) note(c Classification, patientLang string) (string, string) {
	lang := NormalizeLanguage(patientLang)
	order := noteOrder
	// Tags from extended rule sets with configured templates come last.
	for _, t := range c.Tags {
		if !inList(order, t.Tag) {
			order = append(order[:len(order):len(order)], t.Tag)
		}
	}
	for _, tag := range order {
		if !c.Has(tag) {
			continue
		}
		byLang, ok := e.templates[tag]
		if !ok {
			continue
		}
		if text, ok := byLang[lang]; ok && lang != "" {
			return text, lang
		}
		if text, ok := byLang[e.lang]; ok {
			return text, e.lang
		}
	}
	return "", ""
}
