package httpapi

import "testing"

func TestRedactURLs(t *testing.T) {
	m := map[string]any{
		"nats":  map[string]any{"url": "nats://resultgate:s3cret@10.0.0.1:4222", "plain": "nats://10.0.0.2:4222"},
		"list":  []any{"https://u:p@h/x", "no url"},
		"other": 3,
	}
	redactURLs(m)
	if got := m["nats"].(map[string]any)["url"]; got != "nats://resultgate:REDACTED@10.0.0.1:4222" {
		t.Errorf("nats.url = %v", got)
	}
	if got := m["nats"].(map[string]any)["plain"]; got != "nats://10.0.0.2:4222" {
		t.Errorf("plain url changed: %v", got)
	}
	if got := m["list"].([]any)[0]; got != "https://u:REDACTED@h/x" {
		t.Errorf("list url = %v", got)
	}
}
