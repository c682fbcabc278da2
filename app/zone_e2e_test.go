package app

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/resultgate/resultgate/router/holdview"

	"github.com/resultgate/resultgate/router/hold"

	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/internal/testutil"
)

// TestStatuteZoneEndToEnd runs a Texas pathology report through the real
// pipeline (embedded NATS) on an instance in Eastern time: its naive OBR-22
// is read in the facility's zone and the "not before the third day" clock
// ends at midnight Central, not midnight Eastern (issue 12).
func TestStatuteZoneEndToEnd(t *testing.T) {
	cfg, err := config.Parse([]byte(`
policy:
  time_zone: America/New_York
  facility_jurisdictions: {TXPATH: US-TX}
  facility_time_zones: {TXPATH: America/Chicago}
  jurisdictions:
    US-TX: {statute: US-TX-OCC-159.0062}
`))
	if err != nil {
		t.Fatal(err)
	}
	base := testConfig(t, t.TempDir())
	cfg.DataDir, cfg.Durability, cfg.MLLP, cfg.HTTP, cfg.NATS = base.DataDir, base.Durability, base.MLLP, base.HTTP, base.NATS
	a := startApp(t, cfg)

	central, err := time.LoadLocation("America/Chicago")
	if err != nil {
		t.Fatal(err)
	}
	eastern, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	// OBR-22 without an offset, written in Central time as the Texas lab
	// writes it.
	m := strings.ReplaceAll(string(msg(pathORU, "TXZONE1")), "|SYNPATH|", "|TXPATH|")
	m = strings.ReplaceAll(m, obr22Text, obr22At.In(central).Format("20060102150405"))
	sendAll(t, a.MLLPAddr().String(), []byte(m))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	svc := a.Service()
	var h *hold.Hold
	testutil.Eventually(t, 15*time.Second, "Texas pathology hold", func() bool {
		hs, _ := svc.ListHolds(ctx, holdview.Filter{Provider: "D001"})
		if len(hs) != 1 {
			return false
		}
		h, err = svc.GetHold(ctx, hs[0].ID)
		return err == nil
	})
	local := obr22At.In(central)
	want := time.Date(local.Year(), local.Month(), local.Day()+3, 0, 0, 0, 0, central)
	if len(h.Bases) != 1 || h.Bases[0].Kind != "state-law" || !h.Deadline.Equal(want) {
		t.Fatalf("hold bases %+v deadline %s, want state-law until %s (midnight Central)", h.Bases, h.Deadline.UTC(), want.UTC())
	}
	le := obr22At.In(eastern)
	if easternMidnight := time.Date(le.Year(), le.Month(), le.Day()+3, 0, 0, 0, 0, eastern); h.Deadline.Equal(easternMidnight) {
		t.Errorf("deadline %s is midnight Eastern: the instance's zone, not the statute's", h.Deadline.UTC())
	}
}

// TestServeRefusesJurisdictionWithoutRule checks that serve does not start
// with a jurisdiction named without a rule, and says how to fix it.
func TestServeRefusesJurisdictionWithoutRule(t *testing.T) {
	cfg, err := config.Parse([]byte("policy:\n  facility_jurisdictions: {KYLAB: US-KY}\n"))
	if err != nil {
		t.Fatal(err)
	}
	base := testConfig(t, t.TempDir())
	cfg.DataDir, cfg.Durability, cfg.MLLP, cfg.HTTP, cfg.NATS = base.DataDir, base.Durability, base.MLLP, base.HTTP, base.NATS
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = New(cfg, zerolog.Nop()).Start(ctx)
	want := "invalid configuration:\n" +
		`line 2: policy.facility_jurisdictions.KYLAB: "US-KY" has no rule in policy.jurisdictions, so no state law would be applied to its results; add policy.jurisdictions: {US-KY: {statute: US-KY-KRS-333.152}} to apply the shipped preset, or declare policy.jurisdictions: {US-KY: {no_state_law: true}} if it has no such law`
	if err == nil || err.Error() != want {
		t.Errorf("Start = %v\nwant %s", err, want)
	}
}
