package api

// Event types of a migration's destination user (the migration-scoped
// database user the control plane creates on the destination and hands to
// the migration host instead of the cluster's own credentials).
const (
	// EventDestinationUserCreated: the user was created; the message names
	// it and its roles.
	EventDestinationUserCreated EventType = "DESTINATION_USER_CREATED"
	// EventDestinationUserDropped: the user was dropped after the migration ended.
	EventDestinationUserDropped EventType = "DESTINATION_USER_DROPPED"
	// EventDestinationUserWarning: no user could be created (the migration
	// host gets the cluster's own credentials) or one could not be dropped
	// yet; the message says why and what to do.
	EventDestinationUserWarning EventType = "DESTINATION_USER_WARNING"
)
