package deliver

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"text/template"
	"time"

	"github.com/resultgate/resultgate/router/bus"
)

// sender delivers one notification to one receiver.
type sender interface {
	send(ctx context.Context, d Data, attempt int) error
}

// webhook POSTs the notification as JSON, signed.
type webhook struct {
	url     string
	secret  []byte
	headers map[string]string
	text    *template.Template
	client  *http.Client
	now     func() time.Time
}

// maxResponse bounds the part of a receiver's answer read (and discarded),
// so a connection can be reused without a misbehaving receiver costing
// memory.
const maxResponse = 64 << 10

func newWebhook(w Webhook, now func() time.Time) (*webhook, error) {
	secret, err := readSecret(w.HMACSecretFile)
	if err != nil {
		return nil, err
	}
	text := w.Text
	if text == "" {
		text = DefaultText
	}
	t, err := parseTemplate("t", text)
	if err != nil {
		return nil, err
	}
	timeout := w.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	return &webhook{
		url: w.URL, secret: secret, headers: w.Headers, text: t, now: now,
		client: &http.Client{
			Timeout: timeout,
			// A redirect would resend a signed body somewhere the site did
			// not configure: treat it as a failure.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

// Sign returns the signature header value of body signed at ts with secret:
// "sha256=" and the hex HMAC-SHA256 of "<ts>.<body>". Receivers verify it
// the same way and refuse a timestamp far from their clock.
func Sign(secret []byte, ts int64, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether sig is body's signature at ts under secret, in
// constant time.
func Verify(secret []byte, ts int64, body []byte, sig string) bool {
	return hmac.Equal([]byte(Sign(secret, ts, body)), []byte(sig))
}

func (w *webhook) send(ctx context.Context, d Data, attempt int) error {
	text, err := render(w.text, d)
	if err != nil {
		return err
	}
	d.Text = text
	body, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encoding webhook body: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook request: %w", err)
	}
	for k, v := range w.headers {
		req.Header.Set(k, v)
	}
	ts := w.now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "resultgate-notify")
	req.Header.Set(bus.HeaderIdempotencyKey, d.IdempotencyKey)
	req.Header.Set(bus.HeaderNotifyKind, d.Kind)
	req.Header.Set(bus.HeaderNotifyDeliveryNo, strconv.Itoa(attempt))
	req.Header.Set(bus.HeaderNotifyTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(bus.HeaderNotifySignature, Sign(w.secret, ts, body))
	resp, err := w.client.Do(req)
	if err != nil {
		// The URL is configuration, not PHI; the error names it.
		return fmt.Errorf("webhook: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook: answered %s", resp.Status)
	}
	return nil
}
