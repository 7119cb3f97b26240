package api

// EmailNotifications is the body and response of
// GET/PUT /api/atlas/v2/groups/{groupId}/liveMigrations/x-emailNotifications:
// who in the project is emailed about its live migrations.
type EmailNotifications struct {
	// EmailAddresses receive every notification of the project's migrations
	// (plain addresses, at most 50); empty turns email off for the project.
	EmailAddresses []string `json:"emailAddresses"`
	// SMTPConfigured (response only) reports whether the server has an SMTP
	// relay; without one nothing is sent.
	SMTPConfigured bool `json:"smtpConfigured"`
}

// Email event types: an email notification was delivered to the relay, or
// given up on after its retries.
const (
	EventEmailSent   EventType = "EMAIL_SENT"
	EventEmailFailed EventType = "EMAIL_FAILED"
)
