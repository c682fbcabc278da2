package hold

import (
	"encoding/json"

	"github.com/resultgate/resultgate/policy"
)

// BasesFromPolicy converts the policy's bases to the stored form.
func BasesFromPolicy(bs []policy.Basis) []Basis {
	out := make([]Basis, 0, len(bs))
	for _, b := range bs {
		detail, _ := json.Marshal(b)
		out = append(out, Basis{Kind: string(b.Kind), Detail: detail})
	}
	return out
}

// PolicyBases decodes stored bases back into the policy's form.
func PolicyBases(bs []Basis) []policy.Basis {
	out := make([]policy.Basis, 0, len(bs))
	for _, b := range bs {
		var pb policy.Basis
		if len(b.Detail) > 0 && json.Unmarshal(b.Detail, &pb) == nil {
			out = append(out, pb)
			continue
		}
		out = append(out, policy.Basis{Kind: policy.BasisKind(b.Kind)})
	}
	return out
}
