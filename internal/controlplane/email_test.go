package controlplane

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/web"
)

// received is one message the test relay accepted.
type received struct {
	from    string
	to      []string
	subject string
	body    string
}

// relay is a real SMTP server (go-smtp) on a loopback TCP port: STARTTLS with
// a certificate the test makes, AUTH PLAIN, and a switch to refuse messages.
type relay struct {
	addr     string
	roots    *x509.CertPool
	user     string
	password string

	mu       sync.Mutex
	msgs     []received
	attempts int // DATA commands seen
	failNext int // refuse this many DATA commands with 451
	got      chan struct{}
}

func startRelay(t *testing.T) *relay {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "relay.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	r := &relay{roots: x509.NewCertPool(), user: "mailer", password: "relay-secret-pw", got: make(chan struct{}, 16)}
	r.roots.AddCert(cert)
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &relaySession{r: r}, nil }))
	srv.Domain = "relay.test"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return r
}

func (r *relay) config(from string) *SMTPConfig {
	host, port, _ := net.SplitHostPort(r.addr)
	var p int
	for _, c := range port {
		p = p*10 + int(c-'0')
	}
	return &SMTPConfig{Host: host, Port: p, StartTLS: true, TLSConfig: &tls.Config{RootCAs: r.roots}, Username: r.user, Password: r.password, From: from, Timeout: 10 * time.Second}
}

func (r *relay) messages() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}

// wait returns the messages once there are n, failing after 15 s.
func (r *relay) wait(t *testing.T, n int) []received {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		if m := r.messages(); len(m) >= n {
			return m
		}
		select {
		case <-r.got:
		case <-deadline:
			t.Fatalf("relay received %d messages, want %d", len(r.messages()), n)
		}
	}
}

type relaySession struct {
	r      *relay
	authed bool
	from   string
	to     []string
}

func (s *relaySession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *relaySession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != s.r.user || password != s.r.password {
			return errors.New("invalid credentials")
		}
		s.authed = true
		return nil
	}), nil
}

func (s *relaySession) Mail(from string, _ *smtp.MailOptions) error {
	if !s.authed {
		return &smtp.SMTPError{Code: 530, Message: "authentication required"}
	}
	s.from = from
	return nil
}

func (s *relaySession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *relaySession) Data(rd io.Reader) error {
	raw, err := io.ReadAll(rd)
	if err != nil {
		return err
	}
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.r.attempts++
	if s.r.failNext > 0 {
		s.r.failNext--
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	msg, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		return err
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		return err
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		return err
	}
	s.r.msgs = append(s.r.msgs, received{from: s.from, to: slices.Clone(s.to), subject: subject, body: strings.ReplaceAll(string(body), "\r\n", "\n")})
	select {
	case s.r.got <- struct{}{}:
	default:
	}
	return nil
}

func (s *relaySession) Reset()        { s.from, s.to = "", nil }
func (s *relaySession) Logout() error { return nil }

var linkRE = regexp.MustCompile(`https?://\S+`)

// TestEmailNotifications drives every notification through a real SMTP
// relay over TCP (STARTTLS, AUTH PLAIN): the expiry warnings at 24 h and
// 4 h (one of them due during an outage of the control plane), the
// long-cutover notice after a refused first attempt, completion, and a
// failure; each once, each with a link that serves the migration. The
// timers run on a controlled clock (fireTimers and sendDueEmails take now).
func TestEmailNotifications(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rl := startRelay(t)
	dbPath := filepath.Join(t.TempDir(), "cp.db")

	// The control plane behind a real HTTP listener (its URL is in the links);
	// cur is swapped when the control plane restarts.
	var cur atomic.Pointer[Server]
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { cur.Load().Handler().ServeHTTP(w, r) }))
	ts.Start()
	defer ts.Close()
	open := func() *Server {
		s, err := New(ctx, Options{DataPath: dbPath, Key: make([]byte, KeySize), ExternalURL: ts.URL, UI: web.Handler(), SMTP: rl.config("livemigrate@cp.test")})
		if err != nil {
			t.Fatal(err)
		}
		cur.Store(s)
		return s
	}
	s := open()
	defer func() { cur.Load().Close() }()

	_, _, orgID, err := s.Bootstrap(ctx, BootstrapOptions{Username: "root", Password: "root-password"})
	if err != nil {
		t.Fatal(err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { cur.Load().Handler().ServeHTTP(w, r) })
	l := linkHost(t, h, orgID)
	admin, agent, groupID := l.admin, l.agent, l.groupID

	// Recipients: bad addresses are refused by name; good ones kept, deduplicated.
	notePath := "/api/atlas/v2/groups/" + groupID + "/liveMigrations/x-emailNotifications"
	for _, bad := range []string{"not-an-address", "Ops <ops@example.com>", "ops@example.com\r\nBcc: x@evil.test"} {
		if code := call(t, h, "PUT", notePath, admin, api.EmailNotifications{EmailAddresses: []string{"a@example.com", bad}}, nil); code != http.StatusBadRequest {
			t.Errorf("PUT recipients with %q: %d, want 400", bad, code)
		}
	}
	var notes api.EmailNotifications
	call(t, h, "PUT", notePath, admin, api.EmailNotifications{EmailAddresses: []string{"ops@example.com", "dba@example.com", "ops@example.com"}}, &notes)
	wantTo := []string{"ops@example.com", "dba@example.com"}
	call(t, h, "GET", notePath, admin, nil, &notes)
	if !slices.Equal(notes.EmailAddresses, wantTo) || !notes.SMTPConfigured {
		t.Fatalf("recipients = %+v, want %v and smtpConfigured", notes, wantTo)
	}

	newMigration := func() (api.Migration, func(api.Progress)) {
		m, _ := l.migrate(t)
		return m, func(p api.Progress) {
			call(t, h, "POST", "/api/agent/v1/migrations/"+m.ID+"/progress", agent, p, &api.ProgressAck{})
		}
	}
	m, progress := newMigration()
	migPath := "/api/atlas/v2/groups/" + groupID + "/liveMigrations/" + m.ID
	progress(api.Progress{State: api.StateRunning, Phase: "change event application", CanCommit: true})
	var v api.MigrationProgress
	call(t, h, "GET", migPath+"/x-progress", admin, nil, &v)
	if v.CutoverWindow == nil {
		t.Fatal("no cutover window after canCommit")
	}
	expires := v.CutoverWindow.ExpiresAt

	// step fires the timers and sends what is due, at a chosen time.
	step := func(at time.Time) {
		t.Helper()
		s := cur.Load()
		if _, err := s.fireTimers(ctx, at); err != nil {
			t.Fatal(err)
		}
		if _, err := s.sendDueEmails(ctx, at); err != nil {
			t.Fatal(err)
		}
	}
	// checkLink asserts the message carries one link, to this migration's
	// page (or its report), served by the control plane.
	checkLink := func(msg received, id, suffix string) {
		t.Helper()
		links := linkRE.FindAllString(msg.body, -1)
		if len(links) != 1 {
			t.Fatalf("%q: links %v, want one", msg.subject, links)
		}
		u, err := url.Parse(links[0])
		if err != nil {
			t.Fatal(err)
		}
		if want := "/groups/" + groupID + "/migrations/" + id + suffix; u.Fragment != want || !strings.HasPrefix(links[0], ts.URL+"/#") {
			t.Fatalf("%q: link %s, want %s/#%s", msg.subject, links[0], ts.URL, want)
		}
		resp, err := http.Get(links[0])
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(page), "<html") {
			t.Fatalf("GET %s: %d, want the web UI", links[0], resp.StatusCode)
		}
		// The route the fragment names reads this migration through the API.
		call(t, h, "GET", "/api/atlas/v2/groups/"+groupID+"/liveMigrations/"+id, admin, nil, &api.Migration{})
	}
	checkMsg := func(msg received, subject string) {
		t.Helper()
		if msg.subject != subject {
			t.Errorf("subject %q, want %q", msg.subject, subject)
		}
		if msg.from != "livemigrate@cp.test" || !slices.Equal(msg.to, wantTo) {
			t.Errorf("%q: from %s to %v, want livemigrate@cp.test to %v", msg.subject, msg.from, msg.to, wantTo)
		}
		if strings.Contains(msg.body, rl.password) {
			t.Errorf("%q: the body holds the relay password", msg.subject)
		}
	}

	// 25 h before expiry: nothing. 24 h before: the warning, once.
	step(expires.Add(-25 * time.Hour))
	if n := len(rl.messages()); n != 0 {
		t.Fatalf("%d messages 25 h before expiry, want 0", n)
	}
	step(expires.Add(-24*time.Hour + time.Second))
	step(expires.Add(-24*time.Hour + 2*time.Second))
	msgs := rl.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages 24 h before expiry, want 1: %+v", len(msgs), msgs)
	}
	checkMsg(msgs[0], "A migration to your cluster dest will expire in 24 hours")
	checkLink(msgs[0], m.ID, "")
	if !strings.Contains(msgs[0].body, expires.Format(time.RFC1123Z)) {
		t.Errorf("warning body %q does not name the expiry time", msgs[0].body)
	}

	// The control plane is down across the 4 h point: the restarted one
	// neither repeats the 24 h warning nor misses the 4 h one.
	cur.Load().Close()
	open() // the restarted server; step reaches it through cur
	step(expires.Add(-24*time.Hour + 3*time.Second))
	step(expires.Add(-3 * time.Hour))
	step(expires.Add(-3*time.Hour + time.Second))
	msgs = rl.messages()
	if len(msgs) != 2 {
		t.Fatalf("%d messages after the restart at 3 h before expiry, want 2: %+v", len(msgs), msgs)
	}
	checkMsg(msgs[1], "A migration to your cluster dest will expire in 3 hours")
	checkLink(msgs[1], m.ID, "")

	// Cutover; after 12 h a notice. The relay refuses the first attempt:
	// retried after the backoff, not before. (The timers at a far clock
	// counted the host lost; its fresh progress makes it ready again.)
	progress(api.Progress{State: api.StateRunning, Phase: "change event application", CanCommit: true})
	if code := call(t, h, "PUT", migPath+"/cutover", admin, nil, nil); code != http.StatusAccepted {
		t.Fatalf("cutover: %d", code)
	}
	rl.mu.Lock()
	rl.failNext = 1
	before := rl.attempts
	rl.mu.Unlock()
	at := time.Now().Add(12*time.Hour + time.Second)
	step(at)
	step(at.Add(10 * time.Second))
	rl.mu.Lock()
	tried := rl.attempts - before
	rl.mu.Unlock()
	if tried != 1 || len(rl.messages()) != 2 {
		t.Fatalf("after a refused attempt and 10 s: %d attempts, %d messages; want 1 attempt, no new message", tried, len(rl.messages()))
	}
	step(at.Add(31 * time.Second))
	msgs = rl.messages()
	if len(msgs) != 3 {
		t.Fatalf("%d messages after the retry, want 3", len(msgs))
	}
	checkMsg(msgs[2], "The cutover process for your migration to dest has been in progress for at least 12 hours")
	checkLink(msgs[2], m.ID, "")

	// Completion (the report arrives) and a failed second migration, sent by
	// the running server's own loop.
	done := make(chan struct{})
	runCtx, stopRun := context.WithCancel(ctx)
	go func() { cur.Load().Run(runCtx); close(done) }()
	defer func() { stopRun(); <-done }()
	call(t, h, "POST", "/api/agent/v1/migrations/"+m.ID+"/report", agent, api.Report{ChangesSynced: 3, Verification: api.Verification{Status: api.VerificationPassed}}, nil)
	msgs = rl.wait(t, 4)
	checkMsg(msgs[3], "Your migration to dest is complete")
	checkLink(msgs[3], m.ID, "/report")

	m2, progress2 := newMigration()
	progress2(api.Progress{State: api.StateFailed, Phase: "collection copy", Error: "copy db.c: destination refused writes"})
	msgs = rl.wait(t, 5)
	checkMsg(msgs[4], "Your migration to dest failed")
	checkLink(msgs[4], m2.ID, "")
	if !strings.Contains(msgs[4].body, "destination refused writes") {
		t.Errorf("failure body %q does not say why", msgs[4].body)
	}

	// Every send is an event of its migration; nothing was sent twice.
	stopRun()
	<-done
	step(time.Now().Add(time.Minute))
	if n := len(rl.messages()); n != 5 {
		t.Errorf("%d messages in all, want 5", n)
	}
	count := func(id string) int {
		n := 0
		for _, e := range eventTypes(t, cur.Load(), id) {
			if e == api.EventEmailSent {
				n++
			}
		}
		return n
	}
	if a, b := count(m.ID), count(m2.ID); a != 4 || b != 1 {
		t.Errorf("EMAIL_SENT events: %d and %d, want 4 and 1", a, b)
	}

	// A relay that never accepts: emailAttempts tries on the backoff, then
	// given up, as an event; no try after that.
	m3, progress3 := newMigration()
	rl.mu.Lock()
	rl.failNext = 1000
	before = rl.attempts
	rl.mu.Unlock()
	progress3(api.Progress{State: api.StateFailed, Error: "copy db.c: no space left"})
	at = time.Now()
	for i := range emailAttempts {
		step(at)
		at = at.Add(emailBackoff(i+1) + time.Second)
	}
	step(at.Add(24 * time.Hour))
	rl.mu.Lock()
	tried = rl.attempts - before
	rl.mu.Unlock()
	if tried != emailAttempts || !hasEvent(eventTypes(t, cur.Load(), m3.ID), api.EventEmailFailed) {
		t.Errorf("relay refusing: %d attempts, events %v; want %d attempts and EMAIL_FAILED", tried, eventTypes(t, cur.Load(), m3.ID), emailAttempts)
	}
}

// TestEmailRelayRefusals: a relay that offers no STARTTLS when it is
// required, and wrong credentials, fail the delivery with why; retries are
// counted and the relay password appears in no error.
func TestEmailRelayRefusals(t *testing.T) {
	rl := startRelay(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		cfg  func(*SMTPConfig)
		want string
	}{
		{"wrong password", func(c *SMTPConfig) { c.Password = "wrong-password-x" }, "smtp authentication as mailer"},
		{"untrusted certificate", func(c *SMTPConfig) { c.TLSConfig = nil }, "STARTTLS"},
	} {
		cfg := rl.config("livemigrate@cp.test")
		tc.cfg(cfg)
		s, err := New(ctx, Options{DataPath: filepath.Join(t.TempDir(), "cp.db"), Key: make([]byte, KeySize), ExternalURL: "http://cp.test", SMTP: cfg})
		if err != nil {
			t.Fatal(err)
		}
		err = s.sendEmail(ctx, emailNote{id: 1, migrationID: "m", recipients: []string{"ops@example.com"}, subject: "s", body: "b"})
		s.Close()
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), cfg.Password) {
			t.Errorf("%s: err %v, want one naming %q without the password", tc.name, err, tc.want)
		}
	}
	if len(rl.messages()) != 0 {
		t.Errorf("the relay accepted %d messages, want 0", len(rl.messages()))
	}
	for _, bad := range []SMTPConfig{{Port: 25, From: "a@b.c"}, {Host: "h", Port: 0, From: "a@b.c"}, {Host: "h", Port: 25}, {Host: "h", Port: 25, From: "Me <a@b.c>"}} {
		if _, err := New(ctx, Options{DataPath: filepath.Join(t.TempDir(), "cp.db"), Key: make([]byte, KeySize), ExternalURL: "http://cp.test", SMTP: &bad}); err == nil {
			t.Errorf("New with SMTP %+v: no error", bad)
		}
	}
}
