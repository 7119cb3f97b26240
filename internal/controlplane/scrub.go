package controlplane

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/mdb"
)

// Text an agent reports (validation messages, a failure's error, which
// becomes an event and a webhook delivery) is scrubbed before it is stored:
// every connection string in it is redacted, and every secret the control
// plane handed out for that validation or migration (the source password,
// the destination's password and secret connection-string options) is
// replaced by "xxxxx" wherever it appears, in case an error message quotes
// it outside a connection string.

// secretsFor returns the secrets of a sealed request and its destination
// cluster. Failures to read them leave only the connection-string redaction.
func (s *Server) secretsFor(ctx context.Context, st *store, requestEnc []byte, groupID, dest string) []string {
	var out []string
	if plain, err := s.sealer.open(requestEnc); err == nil {
		var req api.MigrationRequest
		if json.Unmarshal(plain, &req) == nil && req.Source.Password != "" {
			out = append(out, req.Source.Password)
		}
	}
	if d, err := s.destination(ctx, st, groupID, dest); err == nil {
		if d.Password != "" {
			out = append(out, d.Password)
		}
		if c, err := mdb.ParseURIUnchecked(d.ConnectionString); err == nil {
			out = append(out, c.SecretValues()...)
		}
	}
	return out
}

// scrubText redacts connection strings in text and replaces each of the
// given secrets (3 characters or more) by "xxxxx".
func scrubText(text string, secrets []string) string {
	text = mdb.RedactText(text)
	for _, v := range secrets {
		if len(v) >= 3 {
			text = strings.ReplaceAll(text, v, "xxxxx")
		}
	}
	return text
}

// scrubValidation scrubs an agent's validation result for validation id.
func (s *Server) scrubValidation(ctx context.Context, st *store, id string, res *api.ValidationResult) {
	var secrets []string
	if v, err := st.ValidationRequest(ctx, id); err == nil {
		secrets = s.secretsFor(ctx, st, v.requestEnc, v.groupID, v.destination)
	}
	res.ErrorMessage = scrubText(res.ErrorMessage, secrets)
	for i := range res.Checks {
		res.Checks[i].Message = scrubText(res.Checks[i].Message, secrets)
	}
}

// scrubMigrationText scrubs text an agent reported about migration m.
func (s *Server) scrubMigrationText(ctx context.Context, st *store, m *migration, text string) string {
	return scrubText(text, s.secretsFor(ctx, st, m.requestEnc, m.groupID, m.destination))
}
