package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadMessagesDirectory: a directory's files are read in name order; a
// file there that is not HL7 at all (a README) is skipped with a warning, but
// one named on the command line is an error, and so is a file in the
// directory that starts like HL7 but is broken is sent (its NAK must be seen).
func TestReadMessagesDirectory(t *testing.T) {
	msg := readFixture(t, "oru_r01_v251.hl7")
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("b.hl7", msg)
	write("a.hl7", msg)
	readme := write("README.md", []byte("# Synthetic messages\n\nSend them with resultgate send.\n"))
	var warn bytes.Buffer
	msgs, err := readMessages(nil, &warn, []string{dir})
	if err != nil || len(msgs) != 2 {
		t.Fatalf("directory: %d messages, %v", len(msgs), err)
	}
	if !strings.Contains(warn.String(), "skipping "+readme+": not an HL7 file") {
		t.Errorf("warning %q", warn.String())
	}
	if _, err := readMessages(nil, &warn, []string{readme}); err == nil {
		t.Error("a non-HL7 file named on the command line was accepted")
	}
	// Broken, but HL7 by its first bytes: sent, so that its NAK is seen.
	write("c.hl7", []byte("\ufeffMSH|"))
	warn.Reset()
	if msgs, err := readMessages(nil, &warn, []string{dir}); err != nil || len(msgs) != 3 || strings.Contains(warn.String(), "c.hl7") {
		t.Errorf("a broken HL7 file in the directory: %d messages, %v, warnings %q; want it sent", len(msgs), err, warn.String())
	}
}
