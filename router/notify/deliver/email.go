package deliver

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"os"
	"strings"
	"text/template"
	"time"

	"github.com/resultgate/resultgate/router/bus"
)

// email sends the notification as a plain-text mail over SMTP with
// net/smtp: STARTTLS (required unless configured otherwise), then AUTH
// PLAIN, which net/smtp only ever sends over TLS (or to localhost).
type email struct {
	addr, host, hello string
	from              *mail.Address
	to                []*mail.Address
	requireTLS        bool
	roots             *x509.CertPool
	username          string
	password          []byte
	timeout           time.Duration
	subject, body     *template.Template
	now               func() time.Time
}

func caPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", path, errors.Unwrap(err))
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no PEM certificate in %s", path)
	}
	return pool, nil
}

func newEmail(e Email, now func() time.Time) (*email, error) {
	host, _, err := net.SplitHostPort(e.Smarthost)
	if err != nil {
		return nil, fmt.Errorf("smarthost: %w", err)
	}
	m := &email{addr: e.Smarthost, host: host, hello: e.Hello, requireTLS: e.StartTLSRequired(),
		username: e.AuthUsername, timeout: e.Timeout, now: now}
	if m.hello == "" {
		m.hello = "localhost"
	}
	if m.timeout == 0 {
		m.timeout = DefaultTimeout
	}
	if m.from, err = mail.ParseAddress(e.From); err != nil {
		return nil, fmt.Errorf("from: %w", err)
	}
	for _, t := range e.To {
		a, err := mail.ParseAddress(t)
		if err != nil {
			return nil, fmt.Errorf("to: %w", err)
		}
		m.to = append(m.to, a)
	}
	if e.CAFile != "" {
		if m.roots, err = caPool(e.CAFile); err != nil {
			return nil, err
		}
	}
	if e.AuthPasswordFile != "" {
		if m.password, err = readSecret(e.AuthPasswordFile); err != nil {
			return nil, err
		}
	}
	subject, body := e.Subject, e.Body
	if subject == "" {
		subject = DefaultSubject
	}
	if body == "" {
		body = DefaultBody
	}
	if m.subject, err = parseTemplate("t", subject); err != nil {
		return nil, fmt.Errorf("subject: %w", err)
	}
	if m.body, err = parseTemplate("t", body); err != nil {
		return nil, fmt.Errorf("body: %w", err)
	}
	return m, nil
}

// ErrNoStartTLS means the SMTP server did not offer STARTTLS and the
// receiver requires it.
var ErrNoStartTLS = errors.New("the SMTP server does not offer STARTTLS (require_starttls is true)")

func (m *email) send(ctx context.Context, d Data, attempt int) error {
	msg, err := m.message(d)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", m.addr)
	if err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	// The whole conversation is bounded: a server that stops answering
	// mid-way cannot hold a worker past the receiver's timeout.
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	c, err := smtp.NewClient(conn, m.host)
	if err != nil {
		_ = conn.Close()
		return fmt.Errorf("smtp greeting: %w", err)
	}
	defer c.Close()
	if err := c.Hello(m.hello); err != nil {
		return fmt.Errorf("smtp EHLO: %w", err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		if err := c.StartTLS(&tls.Config{ServerName: m.host, RootCAs: m.roots, MinVersion: tls.VersionTLS12}); err != nil {
			return fmt.Errorf("smtp STARTTLS: %w", err)
		}
	} else if m.requireTLS {
		return ErrNoStartTLS
	}
	if m.username != "" {
		if err := c.Auth(smtp.PlainAuth("", m.username, string(m.password), m.host)); err != nil {
			return fmt.Errorf("smtp AUTH: %w", err)
		}
	}
	if err := c.Mail(m.from.Address); err != nil {
		return fmt.Errorf("smtp MAIL FROM: %w", err)
	}
	for _, t := range m.to {
		if err := c.Rcpt(t.Address); err != nil {
			return fmt.Errorf("smtp RCPT TO: %w", err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp DATA: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("smtp DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp end of DATA: %w", err)
	}
	// The server has taken responsibility for the mail: a failed QUIT does
	// not make it undelivered.
	_ = c.Quit()
	return nil
}

// message renders the mail: headers (subject encoded as RFC 2047 when it
// is not ASCII, Message-ID derived from the idempotency key so a resent
// mail is recognisable as the same one) and a quoted-printable UTF-8 body.
func (m *email) message(d Data) ([]byte, error) {
	subject, err := render(m.subject, d)
	if err != nil {
		return nil, fmt.Errorf("subject: %w", err)
	}
	body, err := render(m.body, d)
	if err != nil {
		return nil, fmt.Errorf("body: %w", err)
	}
	// A header is one line: a template cannot inject headers.
	subject = strings.Join(strings.Fields(subject), " ")
	var b bytes.Buffer
	header := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	header("From", m.from.String())
	tos := make([]string, len(m.to))
	for i, t := range m.to {
		tos[i] = t.String()
	}
	header("To", strings.Join(tos, ", "))
	header("Subject", mime.QEncoding.Encode("utf-8", subject))
	header("Date", m.now().Format(time.RFC1123Z))
	header("Message-ID", "<"+d.IdempotencyKey+"@resultgate>")
	header(bus.HeaderIdempotencyKey, d.IdempotencyKey)
	header(bus.HeaderNotifyKind, d.Kind)
	header("Auto-Submitted", "auto-generated")
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	body = strings.ReplaceAll(body, "\r\n", "\n")
	if _, err := qp.Write([]byte(strings.ReplaceAll(body, "\n", "\r\n"))); err != nil {
		return nil, fmt.Errorf("encoding body: %w", err)
	}
	if err := qp.Close(); err != nil {
		return nil, fmt.Errorf("encoding body: %w", err)
	}
	return b.Bytes(), nil
}
