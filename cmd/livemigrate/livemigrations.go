package main

import (
	"github.com/spf13/cobra"
)

// `livemigrate liveMigrations` (alias lm) mirrors `atlas liveMigrations`:
// link create|delete, validation create|describe, create, describe (get),
// cutover, with the same flags and outputs; our extras (list, extend,
// cancel, report) sit in the same group. It is the one home of the Admin API
// commands: the constructors live in link.go, validation.go and migration.go.
func init() {
	register(func(e *env) *cobra.Command {
		root := group("liveMigrations", "Manage live migrations, as 'atlas liveMigrations': link, validation, create, describe, cutover (and list, extend, cancel, report)")
		root.Aliases = []string{"lm", "livemigrations", "liveMigration", "livemigration"}
		// `livemigrate migration …` and the like are unknown commands that
		// point here.
		root.SuggestFor = []string{"migration", "migrations", "validation", "validations", "link"}
		flags := addAPIFlags(root)
		link := group("link", "Create or delete the organization's link token")
		link.AddCommand(linkCreateCmd(e, flags), linkDeleteCmd(e, flags))
		validation := group("validation", "Create or describe a pre-migration validation")
		validation.AddCommand(validationCreateCmd(e, flags), validationDescribeCmd(e, flags))
		root.AddCommand(
			link,
			validation,
			migrationCreateCmd(e, flags),
			migrationDescribeCmd(e, flags),
			migrationCutoverCmd(e, flags),
			migrationListCmd(e, flags),
			migrationExtendCmd(e, flags),
			migrationCancelCmd(e, flags),
			migrationReportCmd(e, flags),
		)
		return root
	})
}
