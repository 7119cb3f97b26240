package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/mdb"
)

// Destination users. A migration host never gets the destination cluster's
// own credentials: when a migration (or validation) is created the control
// plane, which holds them sealed, connects to the destination, creates user
// livemigrate-<id> in admin with a random password and the roles of
// mdb.MigrationRoles, and the start (validate) work carries only that user.
// When the migration ends (COMPLETE after the host's report, FAILED,
// cancelled, EXPIRED) or the validation's result is in, the user is
// dropped. Both are retried with backoff while the destination cannot be
// reached; a migration's outcomes are its events, a validation's its
// errorMessage. docs/design/controlplane.md has the whole story.

// Destination user states (destination_users.state).
const (
	// userPending: to be created; the owner's work is held until it is.
	userPending = "PENDING"
	// userActive: created; the owner's work carries it.
	userActive = "ACTIVE"
	// userUnmanaged: no user can be created (a cluster registered without
	// credentials, a destination without user management); the work
	// carries the cluster's credentials, and an event said why.
	userUnmanaged = "UNMANAGED"
	// userDropping: the owner ended; to be dropped.
	userDropping = "DROPPING"
	userDropped  = "DROPPED"
	// userAbandoned: the control plane can no longer drop it (the cluster
	// was deleted); an event told the operator how to.
	userAbandoned = "ABANDONED"
)

// destUserMaxBackoff caps the wait between attempts to create or drop.
const destUserMaxBackoff = 5 * time.Minute

func destUserBackoff(attempts int) time.Duration {
	return min(time.Second<<min(attempts-1, 20), destUserMaxBackoff)
}

// Owners of destination users (destination_users.kind).
const (
	ownerMigration  = "migration"
	ownerValidation = "validation"
)

// destUserName is the name of the user of migration or validation id.
func destUserName(id string) string { return "livemigrate-" + id }

// destUser is a row of destination_users.
type destUser struct {
	ownerID, kind, groupID, cluster, name string
	passwordEnc                           []byte
	state                                 string
	attempts                              int
	sent                                  bool
	lastErr                               string
}

// planUser records, in the transaction creating a migration or validation
// (kind, id) of cluster groupID/cluster, the user to create for it:
// PENDING with a sealed random password when the cluster has credentials
// (the loop creates it), UNMANAGED when it has none.
func (s *Server) planUser(ctx context.Context, st *store, kind, id, groupID, cluster string, now time.Time) (string, error) {
	d, err := s.destination(ctx, st, groupID, cluster)
	if err != nil {
		return "", err
	}
	cs, err := mdb.ParseURIUnchecked(d.ConnectionString)
	if err != nil {
		return "", fmt.Errorf("destination cluster %q: %w", cluster, err)
	}
	state, pw := userPending, s.sealer.seal([]byte(randomToken(24)))
	if d.Username == "" && !cs.HasUser {
		state, pw = userUnmanaged, nil
	}
	u := destUser{ownerID: id, kind: kind, groupID: groupID, cluster: cluster, name: destUserName(id), passwordEnc: pw, state: state}
	if err := st.InsertDestinationUser(ctx, u, now); err != nil {
		return "", err
	}
	if state == userPending {
		wake(s.userWake) // one connection: the loop reads after this commits
	}
	return state, nil
}

// planMigrationUser is planUser for migration m; a cluster without
// credentials gets a warning event.
func (s *Server) planMigrationUser(ctx context.Context, st *store, m *migration, now time.Time) error {
	state, err := s.planUser(ctx, st, ownerMigration, m.id, m.groupID, m.destination, now)
	if err != nil || state != userUnmanaged {
		return err
	}
	msg := fmt.Sprintf("destination cluster %q is registered without credentials, so no migration user is created: migration host %s connects with the connection string as registered. "+
		"If the destination enforces authentication, register it with a user that has userAdminAnyDatabase: each migration then gets a user of its own, dropped when it ends", m.destination, m.host)
	return s.addEvent(ctx, st, m, api.EventDestinationUserWarning, msg, now)
}

// planValidationUser is planUser for validation id.
func (s *Server) planValidationUser(ctx context.Context, st *store, id, groupID, cluster string, now time.Time) error {
	_, err := s.planUser(ctx, st, ownerValidation, id, groupID, cluster, now)
	return err
}

// retireDestinationUser marks migration m's user for dropping, in the
// transaction that ends m (finish).
func (s *Server) retireDestinationUser(ctx context.Context, st *store, m *migration, now time.Time) error {
	return s.retireUser(ctx, st, m.id, now)
}

// retireUser marks owner id's user for dropping. A user whose create never
// reached the server is simply forgotten.
func (s *Server) retireUser(ctx context.Context, st *store, id string, now time.Time) error {
	if err := st.RetireDestinationUser(ctx, id, now); err != nil {
		return err
	}
	// The store has one connection: the loop's next read waits for this
	// transaction, so waking it now is as good as after the commit.
	wake(s.userWake)
	return nil
}

// scopeDestination puts the user of migration or validation id into d, the
// destination of its start or validate work. It reports false while the
// user is not created yet (the work is held). An owner without a row
// (created before destination users existed) and an UNMANAGED one keep the
// cluster's credentials.
func (s *Server) scopeDestination(ctx context.Context, id string, d *api.DestinationCluster) (bool, error) {
	u, err := s.store.DestinationUser(ctx, id)
	switch {
	case errors.Is(err, errNotFound):
		return true, nil
	case err != nil:
		return false, err
	}
	switch u.state {
	case userUnmanaged:
		return true, nil
	case userActive:
	default:
		return false, nil
	}
	pw, err := s.sealer.open(u.passwordEnc)
	if err != nil {
		return false, err
	}
	cs, err := mdb.ParseURIUnchecked(d.ConnectionString)
	if err != nil {
		return false, fmt.Errorf("destination cluster %q: %w", d.Name, err)
	}
	d.ConnectionString = cs.ForUser(mdb.UserDB).String()
	d.Username, d.Password = u.name, string(pw)
	return true, nil
}

// runDestinationUsers creates and drops destination users until ctx is done.
func (s *Server) runDestinationUsers(ctx context.Context) {
	s.runOutbox(ctx, "destination users", s.userWake, s.destinationUsersDue)
}

// destinationUsersDue makes one attempt at every user due to be created or
// dropped and returns when to look again.
func (s *Server) destinationUsersDue(ctx context.Context, now time.Time) (time.Time, error) {
	if err := s.retireEndedValidations(ctx, now); err != nil {
		return time.Time{}, err
	}
	due, err := s.store.DueDestinationUsers(ctx, now, 20)
	if err != nil {
		return time.Time{}, err
	}
	for _, u := range due {
		if err := s.attemptDestinationUser(ctx, u); err != nil {
			return time.Time{}, err
		}
	}
	if len(due) > 0 {
		s.kickWebhooks()
	}
	next := now.Add(time.Hour)
	t, ok, err := s.store.NextDestinationUserAttempt(ctx)
	if err != nil {
		return time.Time{}, err
	}
	if ok && t.Before(next) {
		next = t
	}
	// A validation ends with its result (which wakes the loop) or when its
	// link is deleted (which does not): look again within a minute.
	open, err := s.store.OpenValidationUsers(ctx)
	if err != nil {
		return time.Time{}, err
	}
	if open > 0 {
		if soon := now.Add(time.Minute); soon.Before(next) {
			next = soon
		}
	}
	return next, nil
}

// retireEndedValidations marks the users of validations that are no longer
// PENDING for dropping.
func (s *Server) retireEndedValidations(ctx context.Context, now time.Time) error {
	ended, err := s.store.EndedValidationUsers(ctx)
	if err != nil {
		return err
	}
	for _, id := range ended {
		if err := s.retireUser(ctx, s.store, id, now); err != nil {
			return err
		}
	}
	return nil
}

// userOutcome is what one attempt did to a user.
type userOutcome struct {
	state string // the new state; "" = unchanged (retry later)
	sent  bool   // a createUser may have reached the server
	event api.EventType
	msg   string
	err   error // the attempt's failure, when it is retried
}

// attemptDestinationUser makes one attempt at creating or dropping u and
// records the outcome; only store errors are returned.
func (s *Server) attemptDestinationUser(ctx context.Context, u destUser) error {
	var out userOutcome
	if u.state == userPending {
		out = s.createUserOnce(ctx, u)
	} else {
		out = s.dropUserOnce(ctx, u)
	}
	now := time.Now()
	var notify string
	newState := out.state
	err := s.store.Tx(ctx, func(st *store) error {
		cur, err := st.DestinationUser(ctx, u.ownerID)
		if err != nil {
			return err
		}
		attempts, next, msg := u.attempts, now, out.msg
		switch {
		case cur.state != u.state:
			// The owner ended during a create: a user that may exist
			// now is dropped at once; one that cannot is forgotten.
			if u.state != userPending || !out.sent {
				newState = ""
				return nil
			}
			newState, attempts, msg = userDropping, 0, ""
		case newState == "":
			attempts++
			next = now.Add(destUserBackoff(attempts))
			newState, msg = u.state, ""
			if attempts == 1 {
				msg = retryMessage(u, out.err)
			}
		case u.attempts > 0:
			msg += " (after " + strconv.Itoa(u.attempts+1) + " attempts)"
		}
		lastErr := ""
		if out.err != nil {
			lastErr = out.err.Error()
		}
		if err := st.RecordDestinationUserAttempt(ctx, u.ownerID, newState, attempts, next, out.sent, lastErr, now); err != nil {
			return err
		}
		if u.kind == ownerValidation {
			notify, err = s.validationUserOutcome(ctx, st, u, newState, msg, now)
			return err
		}
		m, err := st.Migration(ctx, u.ownerID)
		if errors.Is(err, errNotFound) {
			return nil // no migration to tell (its organization was deleted)
		}
		if err != nil {
			return err
		}
		if newState == userActive || newState == userUnmanaged {
			notify = m.agentID // its start work can go out now
		}
		if msg == "" {
			return nil
		}
		typ := out.event
		if typ == "" || out.err != nil {
			typ = api.EventDestinationUserWarning
		}
		return s.addEvent(ctx, st, m, typ, msg, now)
	})
	if notify != "" {
		s.work.notify(notify)
	}
	if newState == userDropping {
		wake(s.userWake)
	}
	return err
}

// validationUserOutcome shows the outcome of an attempt at validation u's
// user, in transaction st: while its create fails, the PENDING validation's
// errorMessage says why (cleared once the user exists). It returns the
// agent to wake when the validate work can go out.
func (s *Server) validationUserOutcome(ctx context.Context, st *store, u destUser, newState, msg string, now time.Time) (string, error) {
	agentID, err := st.ValidationAgent(ctx, u.ownerID)
	if errors.Is(err, errNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	switch {
	case u.state == userPending && newState == userPending && msg != "":
		return "", st.SetPendingValidationMessage(ctx, u.ownerID, msg, now)
	case newState == userActive || newState == userUnmanaged:
		return agentID, st.SetPendingValidationMessage(ctx, u.ownerID, "", now)
	}
	if msg != "" {
		s.logger.LogAttrs(ctx, slog.LevelInfo, "validation user", slog.String("validation_id", u.ownerID), slog.String("message", msg))
	}
	return "", nil
}

// retryMessage is the message of a first failed attempt.
func retryMessage(u destUser, err error) string {
	what, then := "create", "The "+u.kind+" waits: its migration host gets no destination credentials until the user exists."
	if u.state == userDropping {
		what, then = "drop", "The user keeps its access until then."
	}
	return fmt.Sprintf("the control plane cannot %s "+u.kind+" user %s on destination cluster %q yet: %v. %s "+
		"The control plane retries, backing off to every %v: it needs to reach the destination with the credentials the cluster is registered with "+
		"(check the address, firewall and TLS settings from the control plane's host; a tlsCAFile must be readable there), "+
		"or register the cluster again with a connection string that works from there",
		what, u.name, u.cluster, err, then, destUserMaxBackoff)
}

// connectDestination connects to cluster groupID/name with its own credentials.
func (s *Server) connectDestination(ctx context.Context, groupID, name string) (*mongo.Client, error) {
	d, err := s.destination(ctx, s.store, groupID, name)
	if err != nil {
		return nil, err
	}
	cs, err := mdb.ParseURIUnchecked(d.ConnectionString)
	if err != nil {
		return nil, fmt.Errorf("destination cluster %q: %w", name, err)
	}
	uri := mdb.URI(cs.WithUser(d.Username, d.Password).String())
	c, err := mdb.Connect(ctx, "destination cluster "+strconv.Quote(name), uri, mdb.ConnectOptions{AppName: "livemigrate-controlplane", Timeout: s.timing.DestinationTimeout})
	if err != nil {
		return nil, errors.New(s.scrubSecrets(err.Error(), cs, d.Password))
	}
	return c, nil
}

// createUserOnce makes one attempt at creating u.
func (s *Server) createUserOnce(ctx context.Context, u destUser) userOutcome {
	pw, err := s.sealer.open(u.passwordEnc)
	if err != nil {
		return userOutcome{err: err}
	}
	c, err := s.connectDestination(ctx, u.groupID, u.cluster)
	if errors.Is(err, errNotFound) {
		return userOutcome{state: userUnmanaged, msg: fmt.Sprintf("destination cluster %q was deleted, so no %s user is created", u.cluster, u.kind)}
	}
	if err != nil {
		return userOutcome{err: err}
	}
	defer c.Disconnect(context.WithoutCancel(ctx))
	// Recorded before it is sent: an owner that ends after a crash here
	// still has the user dropped.
	if err := s.store.MarkDestinationUserSent(ctx, u.ownerID); err != nil {
		return userOutcome{err: err}
	}
	cctx, cancel := context.WithTimeout(ctx, s.timing.DestinationTimeout)
	defer cancel()
	roles := mdb.MigrationRoles
	err = mdb.CreateUser(cctx, c, mdb.UserDB, u.name, string(pw), roles)
	if errors.Is(err, mdb.ErrRolesNotSupported) {
		roles = nil
		err = mdb.CreateUser(cctx, c, mdb.UserDB, u.name, string(pw), nil)
	}
	switch {
	case errors.Is(err, mdb.ErrNoUserManagement):
		return userOutcome{state: userUnmanaged, sent: true, msg: fmt.Sprintf("destination cluster %q has no user management (it runs without authentication), so no %s user is created: "+
			"the migration host is handed the credentials the cluster is registered with. Enable authentication on the destination to give each migration a user of its own, dropped when it ends", u.cluster, u.kind)}
	case err != nil:
		return userOutcome{sent: true, err: err}
	}
	msg := fmt.Sprintf("%s user %s created on destination cluster %q (authSource %s, roles %s); the migration host gets only this user, and it is dropped when the %s ends",
		u.kind, u.name, u.cluster, mdb.UserDB, roleNames(roles), u.kind)
	if roles == nil {
		msg = fmt.Sprintf("%s user %s created on destination cluster %q (authSource %s) with no roles: the destination grants none (it has no authorization, as FerretDB), so the user may run every command there. "+
			"The migration host gets only this user, and it is dropped when the %s ends", u.kind, u.name, u.cluster, mdb.UserDB, u.kind)
	}
	return userOutcome{state: userActive, sent: true, event: api.EventDestinationUserCreated, msg: msg}
}

// dropUserOnce makes one attempt at dropping u.
func (s *Server) dropUserOnce(ctx context.Context, u destUser) userOutcome {
	c, err := s.connectDestination(ctx, u.groupID, u.cluster)
	if errors.Is(err, errNotFound) {
		return userOutcome{state: userAbandoned, msg: fmt.Sprintf("destination cluster %q was deleted before %s user %s could be dropped: if the deployment still exists, drop the user there yourself "+
			`(db.getSiblingDB("%s").dropUser("%s"))`, u.cluster, u.kind, u.name, mdb.UserDB, u.name)}
	}
	if err != nil {
		return userOutcome{err: err}
	}
	defer c.Disconnect(context.WithoutCancel(ctx))
	cctx, cancel := context.WithTimeout(ctx, s.timing.DestinationTimeout)
	defer cancel()
	err = mdb.DropUser(cctx, c, mdb.UserDB, u.name)
	switch {
	case errors.Is(err, mdb.ErrNoUserManagement):
		return userOutcome{state: userDropped, msg: fmt.Sprintf("destination cluster %q has no user management any more, so %s user %s cannot exist there", u.cluster, u.kind, u.name)}
	case err != nil:
		return userOutcome{err: err}
	}
	return userOutcome{state: userDropped, event: api.EventDestinationUserDropped, msg: fmt.Sprintf("%s user %s dropped from destination cluster %q", u.kind, u.name, u.cluster)}
}

func roleNames(roles []mdb.Role) string {
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = r.Role + "@" + r.DB
	}
	return strings.Join(names, ", ")
}

// scrubSecrets removes the cluster's password and secret options from text.
func (s *Server) scrubSecrets(text string, cs *mdb.ConnString, password string) string {
	secrets := cs.SecretValues()
	if len(password) >= 3 {
		secrets = append(secrets, password)
	}
	for _, v := range secrets {
		text = strings.ReplaceAll(text, v, "xxxxx")
	}
	return mdb.RedactText(text)
}

// checkDestinationUser is the name of the validation check the control
// plane adds about the validation's destination user.
const checkDestinationUser = "destination-user"

// destinationUserCheck is the control plane's own check of validation id:
// whether its migration host got a user of its own, and if not why. ok is
// false when the validation has no destination user row.
func (s *Server) destinationUserCheck(ctx context.Context, id string) (api.ValidationCheck, bool, error) {
	u, err := s.store.DestinationUser(ctx, id)
	cluster, name, pwEnc, state, lastErr := u.cluster, u.name, u.passwordEnc, u.state, u.lastErr
	if errors.Is(err, errNotFound) {
		return api.ValidationCheck{}, false, nil
	}
	if err != nil {
		return api.ValidationCheck{}, false, err
	}
	c := api.ValidationCheck{Name: checkDestinationUser, Status: api.CheckPassed,
		Message: fmt.Sprintf("the control plane created user %s on destination cluster %q for this validation and handed the migration host only that user; a migration gets one of its own, dropped when it ends", name, cluster)}
	switch {
	case state == userPending:
		c.Status = api.CheckWarning
		c.Message = fmt.Sprintf("the control plane cannot create user %s on destination cluster %q yet (%s): a migration would wait for its user the same way", name, cluster, lastErr)
	case state == userUnmanaged && pwEnc == nil:
		c.Status = api.CheckWarning
		c.Message = fmt.Sprintf("destination cluster %q is registered without credentials, so migration hosts connect with its connection string as registered and get no user of their own; "+
			"if the destination enforces authentication, register it with a user that has userAdminAnyDatabase", cluster)
	case state == userUnmanaged:
		c.Status = api.CheckWarning
		c.Message = fmt.Sprintf("destination cluster %q has no user management (it runs without authentication): migration hosts are handed the credentials the cluster is registered with", cluster)
	}
	return c, true, nil
}
