//go:build !unix

package hl7

import "testing"

// reportCPU reports nothing where getrusage is unavailable.
func reportCPU(*testing.B) func() { return func() {} }
