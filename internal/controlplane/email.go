package controlplane

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/mail"
	"net/smtp"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/livemigrate/livemigrate/internal/api"
)

// SMTPConfig is the relay email notifications go through. The password comes
// from a file or the environment (see cmd/livemigrate), lives only in memory
// and is never stored, logged or put in an event.
type SMTPConfig struct {
	Host string
	Port int
	// StartTLS requires the STARTTLS upgrade before anything else is sent;
	// the relay's certificate is verified against TLSConfig (nil: the
	// system's roots, for Host). Without it, mail goes in the clear and
	// authentication is refused unless Host is localhost.
	StartTLS  bool
	TLSConfig *tls.Config
	// Username and Password, when Username is set, authenticate with AUTH PLAIN.
	Username string
	Password string
	// From is the envelope sender and From: address.
	From string
	// Timeout bounds one delivery (connect to QUIT); default 30 s.
	Timeout time.Duration
}

func (c *SMTPConfig) check() error {
	switch {
	case c.Host == "":
		return errors.New("smtp: host is required")
	case c.Port <= 0 || c.Port > 65535:
		return fmt.Errorf("smtp: port %d is not a TCP port (1-65535)", c.Port)
	case c.From == "":
		return errors.New("smtp: the From address is required")
	}
	if a, err := mail.ParseAddress(c.From); err != nil || a.Name != "" {
		return fmt.Errorf("smtp: From %q is not a plain email address", c.From)
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	return nil
}

// Notification policy. Expiry warnings go at each lead before the cutover
// window closes (a later, shorter lead supersedes a longer one not yet sent,
// so an outage never produces a stale "24 hours" message); the long-cutover
// notice goes once a cutover has run cutoverLongAfter.
var (
	emailExpiryLeads = []time.Duration{4 * time.Hour, 24 * time.Hour} // ascending
	cutoverLongAfter = 12 * time.Hour
)

// Email retry policy: up to emailAttempts tries, backing off from 30 s,
// doubling, capped at 30 min (about 4 h in all).
const (
	emailAttempts   = 12
	emailMaxBackoff = 30 * time.Minute
	maxEmailAddrs   = 50
	kindExpiryWarn  = "EXPIRY_WARNING"
	kindCutoverLong = "CUTOVER_IN_PROGRESS"
)

func emailBackoff(attempts int) time.Duration {
	d := 30 * time.Second << min(attempts-1, 20)
	return min(d, emailMaxBackoff)
}

// emailEvents are the events that email the project: the outcome of a migration.
var emailEvents = map[api.EventType]bool{api.EventFailed: true, api.EventExpired: true, api.EventCompleted: true, api.EventTakeoverAttempt: true}

// migrationLink is the migration's page in the web UI; reportLink its report.
func (s *Server) migrationLink(m *migration) string {
	return s.opts.ExternalURL + "/#/groups/" + m.groupID + "/migrations/" + m.id
}

func (s *Server) reportLink(m *migration) string { return s.migrationLink(m) + "/report" }

func hours(d time.Duration) string {
	n := int(math.Ceil(d.Hours()))
	if n <= 1 {
		return "1 hour"
	}
	return strconv.Itoa(n) + " hours"
}

// emailOnEvent queues the email of an outcome event (FAILED, EXPIRED,
// COMPLETED) in the transaction st that records it. addEvent calls it.
func (s *Server) emailOnEvent(ctx context.Context, st *store, m *migration, typ api.EventType, msg string, now time.Time) error {
	if s.opts.SMTP == nil || !emailEvents[typ] {
		return nil
	}
	var subject, body string
	switch typ {
	case api.EventFailed:
		subject = "Your migration to " + m.destination + " failed"
		body = "Your live migration to the cluster " + m.destination + " failed: " + msg + "\n\n" +
			"See its results, and start it again when the cause is fixed:\n" + s.migrationLink(m) + "\n"
	case api.EventExpired:
		subject = "Your migration to " + m.destination + " expired"
		body = "The cutover window of your live migration to the cluster " + m.destination + " closed before a cutover, " +
			"so the migration stopped syncing: " + msg + "\n\nSee its results:\n" + s.migrationLink(m) + "\n"
	case api.EventCompleted:
		subject = "Your migration to " + m.destination + " is complete"
		body = "Your live migration to the cluster " + m.destination + " is complete: " + msg + "\n\n" +
			"Point your applications at " + m.destination + ". The report:\n" + s.reportLink(m) + "\n"
	case api.EventTakeoverAttempt:
		subject = "Someone tried to take over the migration host of your migration to " + m.destination
		body = msg + "\n\nThe migration:\n" + s.migrationLink(m) + "\n"
	}
	return st.QueueEmail(ctx, m, queuedEmail{kind: string(typ), subject: subject, body: body}, now)
}

// emailTimers queues the time-based notifications due at now: the expiry
// warnings and the long-cutover notice. fireTimers calls it in its
// transaction st, after expiring lapsed windows.
func (s *Server) emailTimers(ctx context.Context, st *store, now time.Time) error {
	if s.opts.SMTP == nil {
		return nil
	}
	for _, lead := range emailExpiryLeads {
		due, err := st.ExpiryWarningsDue(ctx, now, lead)
		if err != nil {
			return err
		}
		for _, m := range due {
			expires := fromMS(m.expiresAt.Int64)
			left := hours(expires.Sub(now))
			subject := "A migration to your cluster " + m.destination + " will expire in " + left
			body := "The cutover window of your live migration to the cluster " + m.destination + " closes at " +
				expires.Format(time.RFC1123Z) + " (in " + left + "). Cut over before then, or extend the window; " +
				"when it closes, the migration stops syncing and has to start again.\n\n" + s.migrationLink(m) + "\n"
			n := queuedEmail{kind: kindExpiryWarn, deadline: m.expiresAt.Int64, lead: lead.Milliseconds(), subject: subject, body: body}
			if err := st.QueueEmail(ctx, m, n, now); err != nil {
				return err
			}
		}
	}
	due, err := st.LongCutoversDue(ctx, now, cutoverLongAfter)
	if err != nil {
		return err
	}
	for _, m := range due {
		started := fromMS(m.cutoverRequested.Int64)
		subject := "The cutover process for your migration to " + m.destination + " has been in progress for at least " + hours(cutoverLongAfter)
		body := "The cutover of your live migration to the cluster " + m.destination + " started at " + started.Format(time.RFC1123Z) +
			" and has not finished: it has been in progress for at least " + hours(cutoverLongAfter) + ". " +
			"Writes to the source stay stopped until it does. Check the migration host and the migration's state:\n\n" + s.migrationLink(m) + "\n"
		n := queuedEmail{kind: kindCutoverLong, deadline: m.cutoverRequested.Int64, subject: subject, body: body}
		if err := st.QueueEmail(ctx, m, n, now); err != nil {
			return err
		}
	}
	return nil
}

// emailNextDeadline returns the earlier of next and the next time-based
// notification after now. fireTimers calls it.
func (s *Server) emailNextDeadline(ctx context.Context, now, next time.Time) (time.Time, error) {
	if s.opts.SMTP == nil {
		return next, nil
	}
	for _, lead := range emailExpiryLeads {
		t, ok, err := s.store.NextExpiryWarning(ctx, now, lead)
		if err != nil {
			return next, err
		}
		if ok && t.Before(next) {
			next = t
		}
	}
	t, ok, err := s.store.NextLongCutover(ctx, cutoverLongAfter)
	if err != nil {
		return next, err
	}
	if ok && t.Before(next) {
		next = t
	}
	return next, nil
}

func (s *Server) kickEmails() { wake(s.emailWake) }

// runEmails sends queued notifications until ctx is done.
func (s *Server) runEmails(ctx context.Context) {
	s.runOutbox(ctx, "email deliveries", s.emailWake, s.sendDueEmails)
}

type emailNote struct {
	id                int64
	migrationID, kind string
	recipients        []string
	subject, body     string
	attempts          int
	createdAt         int64
}

// sendDueEmails makes one attempt at every notification due at now, records
// each outcome (and its event), and returns when to look again. A crash
// between the relay's acceptance and the record sends that message again on
// restart (at least once); nothing else is ever sent twice.
func (s *Server) sendDueEmails(ctx context.Context, now time.Time) (time.Time, error) {
	due, err := s.store.DueEmails(ctx, now, 50)
	if err != nil {
		return time.Time{}, err
	}
	for _, n := range due {
		if err := ctx.Err(); err != nil {
			return time.Time{}, err
		}
		// A send under way when shutdown begins runs to its end (the relay
		// timeout bounds it) and its outcome is recorded: a message the
		// relay accepted but we did not record would be sent again.
		sendErr := s.sendEmail(context.WithoutCancel(ctx), n)
		if err := s.recordEmail(context.WithoutCancel(ctx), n, sendErr, now); err != nil {
			return time.Time{}, err
		}
	}
	next := now.Add(time.Hour)
	t, ok, err := s.store.NextEmailAttempt(ctx)
	if err != nil {
		return time.Time{}, err
	}
	if ok && t.Before(next) {
		next = t
	}
	return next, nil
}

// recordEmail stores one attempt's outcome; delivery and giving up are events.
func (s *Server) recordEmail(ctx context.Context, n emailNote, sendErr error, now time.Time) error {
	err := s.store.Tx(ctx, func(st *store) error {
		m, err := st.Migration(ctx, n.migrationID)
		if err != nil {
			return err
		}
		if sendErr == nil {
			s.metrics.emails.WithLabelValues("sent").Inc()
			if err := st.MarkEmailSent(ctx, n.id, now); err != nil {
				return err
			}
			msg := fmt.Sprintf("emailed %q to %s", n.subject, strings.Join(n.recipients, ", "))
			return s.addEvent(ctx, st, m, api.EventEmailSent, msg, now)
		}
		attempts := n.attempts + 1
		failed := attempts >= emailAttempts
		result := "retry"
		if failed {
			result = "failed"
		}
		s.metrics.emails.WithLabelValues(result).Inc()
		s.logger.Warn("email delivery failed", "migration_id", n.migrationID, "kind", n.kind, "attempt", attempts, "giving_up", failed, "err", sendErr)
		f := attemptFailure{attempts: attempts, failed: failed, lastErr: sendErr.Error(), next: now.Add(emailBackoff(attempts))}
		if err := st.RecordEmailFailure(ctx, n.id, f); err != nil {
			return err
		}
		if !failed {
			return nil
		}
		msg := fmt.Sprintf("gave up emailing %q after %d attempts: %v", n.subject, attempts, sendErr)
		return s.addEvent(ctx, st, m, api.EventEmailFailed, msg, now)
	})
	if err == nil {
		s.kickWebhooks()
	}
	return err
}

// composeEmail renders a text/plain, quoted-printable RFC 5322 message.
func composeEmail(from string, to []string, subject, body string, date time.Time, id string) []byte {
	var b bytes.Buffer
	hdr := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	hdr("From", from)
	hdr("To", strings.Join(to, ", "))
	hdr("Subject", mime.QEncoding.Encode("utf-8", subject))
	hdr("Date", date.Format(time.RFC1123Z))
	hdr("Message-ID", "<"+id+">")
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", "text/plain; charset=utf-8")
	hdr("Content-Transfer-Encoding", "quoted-printable")
	hdr("Auto-Submitted", "auto-generated")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	_, _ = qp.Write([]byte(strings.ReplaceAll(body, "\n", "\r\n")))
	_ = qp.Close()
	return b.Bytes()
}

// sendEmail delivers n through the relay: one SMTP session, all recipients.
func (s *Server) sendEmail(ctx context.Context, n emailNote) error {
	c := s.opts.SMTP
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	addr := net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("smtp connect %s: %w", addr, err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	cl, err := smtp.NewClient(conn, c.Host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("smtp greeting from %s: %w", addr, err)
	}
	defer cl.Close()
	if c.StartTLS {
		if ok, _ := cl.Extension("STARTTLS"); !ok {
			return fmt.Errorf("smtp relay %s does not offer STARTTLS, which is required: fix the relay or turn STARTTLS off", addr)
		}
		cfg := &tls.Config{ServerName: c.Host, MinVersion: tls.VersionTLS12}
		if c.TLSConfig != nil {
			cfg = c.TLSConfig.Clone()
			if cfg.ServerName == "" {
				cfg.ServerName = c.Host
			}
		}
		if err := cl.StartTLS(cfg); err != nil {
			return fmt.Errorf("smtp STARTTLS with %s: %w", addr, err)
		}
	}
	if c.Username != "" {
		if err := cl.Auth(smtp.PlainAuth("", c.Username, c.Password, c.Host)); err != nil {
			return fmt.Errorf("smtp authentication as %s: %w", c.Username, err)
		}
	}
	if err := cl.Mail(c.From); err != nil {
		return fmt.Errorf("smtp MAIL FROM: %w", err)
	}
	for _, r := range n.recipients {
		if err := cl.Rcpt(r); err != nil {
			return fmt.Errorf("smtp RCPT TO %s: %w", r, err)
		}
	}
	w, err := cl.Data()
	if err != nil {
		return fmt.Errorf("smtp DATA: %w", err)
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	id := "livemigrate." + n.migrationID + "." + strconv.FormatInt(n.id, 10) + "." + hex.EncodeToString(rnd[:]) + "@" + hostOf(s.opts.ExternalURL)
	if _, err := w.Write(composeEmail(c.From, n.recipients, n.subject, n.body, time.Now(), id)); err != nil {
		return fmt.Errorf("smtp message: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp message: %w", err)
	}
	_ = cl.Quit()
	return nil
}

// hostOf is the host of the external URL, for Message-IDs.
func hostOf(u string) string {
	if p, err := url.Parse(u); err == nil && p.Hostname() != "" {
		return p.Hostname()
	}
	return "livemigrate"
}

// GET …/groups/{groupId}/liveMigrations/x-emailNotifications (extension):
// the project's notification recipients.
func (s *Server) handleGetEmailNotifications(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	pr, err := s.requireProject(ctx, p, r.PathValue("groupId"), false)
	if err != nil {
		return err
	}
	out := api.EmailNotifications{EmailAddresses: []string{}, SMTPConfigured: s.opts.SMTP != nil}
	addrs, err := s.store.EmailRecipients(ctx, pr.ID)
	switch {
	case errors.Is(err, errNotFound):
	case err != nil:
		return err
	default:
		out.EmailAddresses = addrs
	}
	negotiate(w, r, api.MediaType20230101)
	writeJSON(w, http.StatusOK, out)
	return nil
}

// PUT …/groups/{groupId}/liveMigrations/x-emailNotifications (extension):
// replaces the project's recipients; an empty list turns email off.
func (s *Server) handlePutEmailNotifications(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	var req api.EmailNotifications
	if err := decodeJSON(w, r, maxBodyBytes, &req); err != nil {
		return err
	}
	pr, err := s.requireProject(ctx, p, r.PathValue("groupId"), true)
	if err != nil {
		return err
	}
	addrs, err := checkEmailAddresses(req.EmailAddresses)
	if err != nil {
		return err
	}
	if err := s.store.SetEmailRecipients(ctx, pr.ID, addrs, time.Now()); err != nil {
		return err
	}
	s.kickTimers() // conditions already true for this project are queued now
	negotiate(w, r, api.MediaType20230101)
	writeJSON(w, http.StatusOK, api.EmailNotifications{EmailAddresses: addrs, SMTPConfigured: s.opts.SMTP != nil})
	return nil
}

// checkEmailAddresses accepts plain addresses only ("ops@example.com", no
// display names), drops duplicates and keeps the order.
func checkEmailAddresses(in []string) ([]string, error) {
	if len(in) > maxEmailAddrs {
		return nil, badRequest("INVALID_ATTRIBUTE", "emailAddresses has %d entries; at most %d are allowed", len(in), maxEmailAddrs).onField("emailAddresses")
	}
	out := []string{}
	for i, a := range in {
		a = strings.TrimSpace(a)
		pa, err := mail.ParseAddress(a)
		if err != nil || pa.Name != "" || pa.Address != a || !strings.Contains(a[strings.LastIndex(a, "@")+1:], ".") && !strings.HasSuffix(a, "@localhost") {
			return nil, badRequest("INVALID_EMAIL_ADDRESS", "emailAddresses[%d] %q is not a plain email address such as ops@example.com", i, in[i]).onField("emailAddresses")
		}
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out, nil
}
