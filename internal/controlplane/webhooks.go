package controlplane

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/livemigrate/livemigrate/internal/api"
)

// Webhook retry policy: up to webhookAttempts tries, backing off from 1 s,
// doubling, capped at 5 min. Deliveries are rows in the store, so a restart
// neither loses nor repeats a delivered one (at-least-once across a crash
// between sending and recording).
const (
	webhookAttempts   = 8
	webhookMaxBackoff = 5 * time.Minute
	signatureHeader   = "X-Livemigrate-Signature"
)

func webhookBackoff(attempts int) time.Duration {
	d := time.Second << min(attempts-1, 20)
	return min(d, webhookMaxBackoff)
}

// runWebhooks delivers queued webhook events until ctx is done.
func (s *Server) runWebhooks(ctx context.Context) {
	s.runOutbox(ctx, "webhook deliveries", s.hookWake, s.deliverDue)
}

// runOutbox runs one delivery loop of a queue kept in the store (webhooks,
// emails) until ctx is done: due makes one attempt at everything due at now
// and says when to look again; a wake on wakeCh (something was queued)
// looks at once, and a failed pass (logged as failMsg) is retried in 5 s.
func (s *Server) runOutbox(ctx context.Context, failMsg string, wakeCh <-chan struct{}, due func(ctx context.Context, now time.Time) (time.Time, error)) {
	for {
		next, err := due(ctx, time.Now())
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.logger.Warn(failMsg, "err", err)
			next = time.Now().Add(5 * time.Second)
		}
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-wakeCh:
			t.Stop()
		}
	}
}

type delivery struct {
	id, eventID int64
	attempts    int
	url         string
	urlEnc      []byte
	secret      []byte
}

// deliverDue sends every due delivery once and returns when to look again.
func (s *Server) deliverDue(ctx context.Context, now time.Time) (time.Time, error) {
	due, err := s.store.DueDeliveries(ctx, now, 50)
	if err != nil {
		return time.Time{}, err
	}
	for _, d := range due {
		if err := ctx.Err(); err != nil {
			return time.Time{}, err
		}
		if err := s.deliver(ctx, d); err != nil {
			return time.Time{}, err
		}
	}
	next := now.Add(time.Hour)
	t, ok, err := s.store.NextDeliveryAttempt(ctx)
	if err != nil {
		return time.Time{}, err
	}
	if ok && t.Before(next) {
		next = t
	}
	return next, nil
}

// deliver makes one attempt and records its outcome; only store errors are returned.
func (s *Server) deliver(ctx context.Context, d delivery) error {
	e, err := s.store.Event(ctx, d.eventID)
	if err != nil {
		return err
	}
	// An attempt under way when shutdown begins runs to its end (its own
	// timeout bounds it) and is recorded: a delivery the receiver accepted
	// but we did not record would be sent again.
	ctx = context.WithoutCancel(ctx)
	sendErr := s.send(ctx, d, e)
	now := time.Now()
	if sendErr == nil {
		s.metrics.webhooks.WithLabelValues("delivered").Inc()
		return s.store.MarkDelivered(ctx, d.id, now)
	}
	attempts := d.attempts + 1
	failed := attempts >= webhookAttempts
	result := "retry"
	if failed {
		result = "failed"
	}
	s.metrics.webhooks.WithLabelValues(result).Inc()
	s.logger.Warn("webhook delivery failed", "event_id", d.eventID, "attempt", attempts, "giving_up", failed, "err", sendErr)
	return s.store.RecordDeliveryFailure(ctx, d.id, attemptFailure{attempts: attempts, failed: failed, lastErr: sendErr.Error(), next: now.Add(webhookBackoff(attempts))})
}

func (s *Server) send(ctx context.Context, d delivery, e api.Event) error {
	body, _ := json.Marshal(e)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	target := d.url
	if len(d.urlEnc) > 0 {
		plain, err := s.sealer.open(d.urlEnc)
		if err != nil {
			return err
		}
		target = string(plain)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook request to %s: %w", d.url, errors.New("not a valid URL"))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "livemigrate-webhook")
	req.Header.Set("X-Livemigrate-Event", string(e.Type))
	if len(d.secret) > 0 {
		secret, err := s.sealer.open(d.secret)
		if err != nil {
			return err
		}
		req.Header.Set(signatureHeader, "sha256="+hmacHex(secret, body))
	}
	resp, err := s.opts.WebhookClient.Do(req)
	if err != nil {
		// The error names the URL, user information and all: name the
		// display form instead.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("post webhook %s: %w", d.url, err)
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("post webhook: status %d", resp.StatusCode)
	}
	return nil
}
