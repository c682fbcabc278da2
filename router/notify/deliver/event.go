package deliver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
)

// Event is one notification read from NOTIFY: the union of
// notify.Notification and notify.TriageNotice, with where it came from. It
// carries no PHI (router/notify's contract).
type Event struct {
	Kind       string    `json:"kind"`
	HoldID     string    `json:"hold_id,omitempty"`
	ProviderID string    `json:"provider_id,omitempty"`
	Tags       []string  `json:"tags,omitempty"`
	Bases      []string  `json:"bases,omitempty"`
	Deadline   time.Time `json:"deadline,omitzero"`
	At         time.Time `json:"at"`
	Reason     string    `json:"reason,omitempty"`
	Detail     string    `json:"detail,omitempty"`
	DeadSeq    uint64    `json:"dead_seq,omitempty"`
	InboundSeq uint64    `json:"inbound_seq,omitempty"`
	// ControlID is MSH-10 of a triage notice's or dead letter's message.
	ControlID string `json:"control_id,omitempty"`
	// Stage is "intake" for a message the intake refused (dead-letter).
	Stage string `json:"-"`

	// Role is clinician or oncall, from the subject (operator for
	// dead-letter and release-refused).
	Role string `json:"-"`
	// MsgID is the notification's Nats-Msg-Id (ntf-<hold>-<kind>), or
	// "notify-<seq>" for one published without.
	MsgID string `json:"-"`
	// Seq is the notification's sequence in NOTIFY.
	Seq uint64 `json:"-"`
}

// decodeEvent reads a NOTIFY message.
func decodeEvent(subject string, data []byte, msgID string, seq uint64) (Event, error) {
	var e Event
	if err := json.Unmarshal(data, &e); err != nil {
		return e, fmt.Errorf("decoding notification: %w", err)
	}
	switch {
	case subject == bus.SubjectNotifyOnCall:
		e.Role = RoleOnCall
	case strings.HasPrefix(subject, bus.SubjectNotifyClinicianPrefix):
		e.Role = RoleClinician
	default:
		return e, fmt.Errorf("notification on unknown subject %s", subject)
	}
	if e.Kind == "" {
		return e, fmt.Errorf("notification without a kind")
	}
	e.MsgID = msgID
	if e.MsgID == "" {
		e.MsgID = fmt.Sprintf("notify-%d", seq)
	}
	e.Seq = seq
	return e, nil
}

// PHI is what a receiver with include_phi gets besides the PHI-free
// notification: the patient's primary identifier (PID-3, usually the MRN)
// and the test's name (OBR-4) of the held result, or the MSH-10 control ID
// of a triaged one. Fields the event does not have are empty.
type PHI struct {
	PatientID string `json:"patient_id,omitempty"`
	TestName  string `json:"test_name,omitempty"`
	ControlID string `json:"control_id,omitempty"`
}

// Data is what templates see, and what a webhook's JSON body carries.
type Data struct {
	// Receiver is the receiver's name.
	Receiver string `json:"receiver"`
	// Kind is hold-created, reminder, escalation or triage; Role is
	// clinician or oncall.
	Kind string `json:"kind"`
	Role string `json:"role"`
	// Title is one line saying what happened; Text the default summary.
	Title string `json:"title"`
	Text  string `json:"text"`
	// HoldID is the opaque hold ID (empty on a triage notice).
	HoldID     string   `json:"hold_id,omitempty"`
	ProviderID string   `json:"provider_id,omitempty"`
	Tags       []string `json:"tags,omitempty"`
	Bases      []string `json:"bases,omitempty"`
	// Count is how many results the notification is about.
	Count int `json:"count"`
	// Waiting is how many held results wait for this audience now (the
	// clinician's own, or those escalated to on-call), with the soonest
	// deadline among them; zero when not known. WaitingText says it in
	// words and is also appended to Text.
	Waiting         int       `json:"waiting,omitempty"`
	WaitingEarliest time.Time `json:"waiting_earliest,omitzero"`
	WaitingText     string    `json:"waiting_text,omitempty"`
	// Deadline is when the held result is released at the latest, in the
	// policy's time zone; DeadlineText the same in words, TimeLeft the time
	// from At to it ("2 d 3 h").
	Deadline     time.Time `json:"deadline,omitzero"`
	DeadlineText string    `json:"deadline_text,omitempty"`
	TimeLeft     string    `json:"time_left,omitempty"`
	At           time.Time `json:"at"`
	// Link opens the hold's page in the worklist (the worklist itself when
	// the notification is about no single hold).
	Link string `json:"link,omitempty"`
	// Reason, Detail and DeadSeq say why a result was triaged, a message
	// dead-lettered or a release refused (a reason code, the problem in
	// words without message content, the DEAD sequence).
	Reason  string `json:"reason,omitempty"`
	Detail  string `json:"detail,omitempty"`
	DeadSeq uint64 `json:"dead_seq,omitempty"`
	// IdempotencyKey is stable per notification and receiver.
	IdempotencyKey string `json:"idempotency_key"`
	// PHI is set only for a receiver with include_phi.
	PHI *PHI `json:"phi,omitempty"`
}

// newData builds the template data of e for receiver r.
func newData(e Event, receiver, link string, loc *time.Location) Data {
	d := Data{
		Receiver: receiver, Kind: e.Kind, Role: e.Role, HoldID: e.HoldID, ProviderID: e.ProviderID,
		Tags: e.Tags, Bases: e.Bases, Count: 1, At: e.At.In(loc), Link: link,
		Reason: e.Reason, Detail: e.Detail, DeadSeq: e.DeadSeq, IdempotencyKey: e.MsgID + "." + receiver,
	}
	if !e.Deadline.IsZero() {
		d.Deadline = e.Deadline.In(loc)
		d.DeadlineText = d.Deadline.Format("Mon 2 Jan 2006, 15:04 MST")
		// The worklist's wording (hold.Left), counted from when the
		// notification was made.
		d.TimeLeft = hold.Left(e.Deadline, e.At)
	}
	// "(2 d 3 h left)", or "(due now)" once the deadline has come.
	timeLeft := func(suffix string) string {
		if !e.Deadline.After(e.At) {
			return " (due now)."
		}
		return " (" + d.TimeLeft + " " + suffix + ")."
	}
	what := "A result"
	if len(e.Tags) > 0 {
		what = "A result tagged " + strings.Join(e.Tags, ", ")
	}
	switch e.Kind {
	case bus.NotifyHoldCreated:
		d.Title = "A result is held for your review"
		d.Text = what + " is held before it reaches the patient portal. It is released at the latest on " + d.DeadlineText + timeLeft("from now")
	case bus.NotifyReminder:
		d.Title = "Reminder: a held result awaits your review"
		d.Text = what + " is still held for your review. It is released automatically on " + d.DeadlineText + timeLeft("left")
	case bus.NotifyEscalation:
		d.Title = "On-call: a held result nears its deadline unreviewed"
		d.Text = what + " has not been reviewed by the ordering clinician. It is released automatically on " + d.DeadlineText + timeLeft("left")
	case bus.NotifyTriage:
		d.Title = "On-call: a result cannot be attributed to a patient"
		d.Text = "A result was put in triage (" + e.Reason + "): it is never released until someone corrects it. Find it on the worklist's triage list or with `resultgate dead list --open`."
	case KindDeadLetter:
		d.Title = "A message could not be processed"
		where := "The pipeline"
		if e.Stage == "intake" {
			where = "The intake refused it and"
		}
		d.Text = where + " put it in the dead letters (" + e.Reason + ": " + e.Detail + "), DEAD seq " + strconv.FormatUint(e.DeadSeq, 10) +
			". Find it with `resultgate dead list`; replay it once the cause is fixed."
	case KindReleaseRefused:
		d.Title = "A released result cannot reach the portal"
		d.Text = "A result was released but the portal feed cannot take it (" + e.Reason + "): the patient does not see it until the sender corrects the message."
	default:
		d.Title = "Notification: " + e.Kind
		d.Text = "resultgate sent a notification of kind " + e.Kind + "."
	}
	if e.HoldID != "" {
		d.Text += " Hold " + e.HoldID + "."
	}
	return d
}

// setWaiting adds the count of waiting results w to d, in words too.
func (d *Data) setWaiting(w Waiting, loc *time.Location) {
	if w.Count < 1 {
		return
	}
	d.Waiting = w.Count
	whose := "waiting for your review"
	if d.Role == RoleOnCall {
		whose = "escalated to on-call and not yet released"
	}
	if w.Count == 1 {
		d.WaitingText = "1 held result is " + whose
	} else {
		d.WaitingText = strconv.Itoa(w.Count) + " held results are " + whose
	}
	if !w.Earliest.IsZero() {
		d.WaitingEarliest = w.Earliest.In(loc)
		d.WaitingText += "; the soonest is released automatically on " + d.WaitingEarliest.Format("Mon 2 Jan 2006, 15:04 MST")
	}
	d.WaitingText += "."
	d.Text += " " + d.WaitingText
}

// Default templates. They use only the PHI-free fields, so a receiver with
// include_phi adds PHI only where its site's own template asks for it, and
// the defaults show it on a line of its own.
const (
	// DefaultText is a webhook body's "text".
	DefaultText = `{{.Title}}: {{.Text}}{{with .Link}} {{.}}{{end}}`
	// DefaultSubject is an email's subject.
	DefaultSubject = `[resultgate] {{.Title}}`
	// DefaultBody is an email's body.
	DefaultBody = `{{.Title}}.

{{.Text}}
{{with .Link}}
Open the worklist: {{.}}
{{end}}{{with .PHI}}
Patient: {{.PatientID}}
Test: {{.TestName}}
{{end}}
--
Sent by resultgate to {{.Receiver}} ({{.Kind}}, {{.IdempotencyKey}}).
This notification carries no patient information{{if .PHI}} beyond the lines above{{end}}: sign in to see the result.
`
)

// funcs are the functions templates may call besides text/template's.
var funcs = template.FuncMap{
	"join":  strings.Join,
	"upper": strings.ToUpper,
	"localtime": func(t time.Time, layout string) string {
		return t.Format(layout)
	},
}

// maxRendered bounds what one template may produce.
const maxRendered = 64 << 10

// render executes t on d, bounded.
func render(t *template.Template, d Data) (string, error) {
	var b bytes.Buffer
	if err := t.Execute(&limitWriter{w: &b, n: maxRendered}, d); err != nil {
		return "", fmt.Errorf("template: %w", stripTemplateName(err))
	}
	return b.String(), nil
}

type limitWriter struct {
	w *bytes.Buffer
	n int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if len(p) > l.n {
		return 0, fmt.Errorf("output longer than %d bytes", maxRendered)
	}
	l.n -= len(p)
	return l.w.Write(p)
}

// sampleData are notifications of every kind, with and without PHI, that
// check-config renders each configured template with.
func sampleData() []Data {
	at := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	var out []Data
	for _, k := range Kinds {
		e := Event{Kind: k, HoldID: "H-sample", Tags: []string{"malignancy"}, Bases: []string{"patient-request"},
			Deadline: at.Add(72 * time.Hour), At: at, Role: RoleClinician, MsgID: "ntf-sample"}
		switch k {
		case bus.NotifyTriage:
			e = Event{Kind: k, Reason: bus.DeadUnattributed, DeadSeq: 7, At: at, Role: RoleOnCall, MsgID: "ntf-sample"}
		case KindDeadLetter:
			e = Event{Kind: k, Reason: bus.DeadParse, Detail: "no MSH segment", DeadSeq: 7, At: at, Role: RoleOperator, MsgID: "dead-7"}
		case KindReleaseRefused:
			e = Event{Kind: k, HoldID: "H-sample", Reason: "fhir: no results", At: at, Role: RoleOperator, MsgID: "unpub-H-sample"}
		}
		d := newData(e, "sample", "https://results.example.org/", time.UTC)
		out = append(out, d)
		d.PHI = &PHI{PatientID: "MRN", TestName: "Test", ControlID: "CTRL"}
		out = append(out, d)
	}
	return out
}
