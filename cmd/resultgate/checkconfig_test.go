package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckConfigEveryProblem checks that one run of check-config reports
// every problem of a file, across sections, each by file, line and key in
// the file's terms, warnings apart: the case of issue 12.
func TestCheckConfigEveryProblem(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "site.yaml")
	body := strings.ReplaceAll(`data_dir: @/data
mllp:
  adress: ":2575"
  max_conns: many
  read_timeout: 2h
  tls:
    cert_file: @/cert.pem
    key_file: @/key.pem
intake:
  partitons: 8
  duplicate_window: 30d
holds:
  reminder_before: 100000h
  max_deliver: 0
  remind_before: 1h
policy:
  time_zone: America/New_York
  jurisdiction: US-KY
  facility_jurisdictions: {TXLAB: US-TX, NYLAB: US-NY}
  facility_time_zones: {TXLAB: Central}
  jurisdictions:
    US-TX: {statute: US-TX-OCC-159.0062}
    US-XX: {citation: x, applies_to: [[genetic]], clock: {business_days: 2}}
forwarder:
  enabled: true
  addr: nowhere
  tls: {ca_file: @/ca.pem}
auth:
  tokens_file: @/tokens.yaml
bogus: 1
`, "@", dir)
	if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err := runCLI(t, "", "check-config", f)
	if exitCode(err) != 1 {
		t.Fatalf("exit %d, want 1: %v", exitCode(err), err)
	}
	wantErr := strings.ReplaceAll(`@/site.yaml: 16 problems:
@/site.yaml:3: mllp.adress: unknown key (did you mean mllp.addr?)
@/site.yaml:4: mllp.max_conns: must be a whole number, got "many"
@/site.yaml:5: mllp.read_timeout: must be at most 1h, got 2h: a sender that takes longer to send one frame is stuck
@/site.yaml:7: mllp.tls.cert_file: file @/cert.pem does not exist
@/site.yaml:8: mllp.tls.key_file: file @/key.pem does not exist
@/site.yaml:10: intake.partitons: unknown key (did you mean intake.partitions?)
@/site.yaml:11: intake.duplicate_window: must be a duration such as 30s, 5m or 24h, got "30d" (this key takes no days: write 720h)
@/site.yaml:13: holds.reminder_before: must be at most 8760h (365 days), got 100000h
@/site.yaml:14: holds.max_deliver: must be at least 1, got 0
@/site.yaml:15: holds.remind_before: unknown key (did you mean holds.reminder_before?)
@/site.yaml:18: policy.jurisdiction: "US-KY" has no rule in policy.jurisdictions, so no state law would be applied to its results; add policy.jurisdictions: {US-KY: {statute: US-KY-KRS-333.152}} to apply the shipped preset, or declare policy.jurisdictions: {US-KY: {no_state_law: true}} if it has no such law
@/site.yaml:19: policy.facility_jurisdictions.NYLAB: "US-NY" has no rule in policy.jurisdictions, so no state law would be applied to its results; add a rule under policy.jurisdictions.US-NY (citation, applies_to, clock, time_zone), or declare policy.jurisdictions: {US-NY: {no_state_law: true}} if it has no such law
@/site.yaml:20: policy.facility_time_zones.TXLAB: unknown time zone "Central" (want an IANA zone such as America/Chicago)
@/site.yaml:26: forwarder.addr: must be host:port, got "nowhere"
@/site.yaml:27: forwarder.tls.ca_file: file @/ca.pem does not exist
@/site.yaml:30: bogus: unknown key (the top level takes auth, data_dir, durability, fhir, forwarder, holds, http, intake, log, mllp, nats, notify, policy, roles, rules)`, "@", dir)
	if err.Error() != wantErr {
		t.Errorf("check-config error:\n%s\nwant\n%s", err, wantErr)
	}
	wantOut := strings.ReplaceAll(`@/site.yaml:23: warning: policy.jurisdictions.US-XX.time_zone: not set: the statute's days for its results are counted in policy.time_zone (America/New_York); set the zone the statute is counted in if it differs
@/site.yaml:29: warning: auth.tokens_file: file @/tokens.yaml does not exist yet: the API accepts no token until `+"`resultgate token new`"+` creates it
`, "@", dir)
	if out != wantOut {
		t.Errorf("stdout:\n%s\nwant\n%s", out, wantOut)
	}
}
