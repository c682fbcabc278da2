package dead

import (
	"errors"
	"fmt"
	"testing"

	"github.com/resultgate/resultgate/fhirmap"
)

// A dead letter says why without message content: known sentinels by their
// text, anything else by the fallback.
func TestSafeDetail(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("mapping hold h1 to FHIR: %w", fhirmap.ErrMultiplePatients), "fhirmap: message has results for more than one patient"},
		{fmt.Errorf("mapping: %w: OBR-25 %q", fhirmap.ErrResultStatus, "Z"), "fhirmap: result status cannot be mapped"},
		{fmt.Errorf("%w: Observation.valueString %q", fhirmap.ErrInvalidBundle, "TESTPATIENT"), "fhirmap: bundle failed FHIR validation"},
		{errors.New("value TESTPATIENT^JANE is bad"), "fallback"},
		{nil, ""},
	} {
		if got := SafeDetail(c.err, "fallback"); got != c.want {
			t.Errorf("SafeDetail(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}
