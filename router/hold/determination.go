package hold

import "time"

// Determination is a clinician's individual decision to hold the result of
// one order (Preventing Harm, 45 CFR 171.201).
type Determination struct {
	// Order is the filler order number (OBR-3) as given by the clinician.
	Order    string `json:"order"`
	OrderKey string `json:"order_key"`
	Reason   string `json:"reason"`
	// HarmType is the type of harm the determination prevents (HarmTypes).
	HarmType string    `json:"harm_type,omitempty"`
	By       string    `json:"by"`
	Role     string    `json:"role,omitempty"`
	At       time.Time `json:"at"`
}

// Types of harm under the Preventing Harm exception, 45 CFR 171.201(d).
const (
	// HarmLifeOrSafety: access is reasonably likely to endanger the life or
	// physical safety of the patient or another person (171.201(d)(3), the
	// standard when the patient themselves receives the result).
	HarmLifeOrSafety = "life-or-physical-safety"
	// HarmSubstantialOther: the result references another person and access
	// is reasonably likely to cause that person substantial harm
	// (171.201(d)(2)).
	HarmSubstantialOther = "substantial-harm-to-other"
)

// HarmTypes lists the accepted harm types.
var HarmTypes = []string{HarmLifeOrSafety, HarmSubstantialOther}
