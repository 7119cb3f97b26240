package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/cli"
	"github.com/livemigrate/livemigrate/internal/engine"
)

// requestFlags are the flags of `lm create` and `lm validation create`,
// named as in `atlas liveMigrations create`.
type requestFlags struct {
	projectID, cluster, hostnameSchema           string
	sourceCluster, sourceProject, user, password string
	caPath, verification                         string
	hosts                                        []string
	managed, ssl, drop, force                    bool
}

func addRequestFlags(c *cobra.Command) *requestFlags {
	r := &requestFlags{}
	f := c.Flags()
	f.StringVar(&r.projectID, "projectId", "", "destination project ID (default: the profile's project_id, or your only project)")
	f.StringVar(&r.cluster, "clusterName", "", "destination cluster name (required)")
	f.StringSliceVar(&r.hosts, "migrationHost", nil, "hostname of the migration host that runs the migration (required)")
	f.StringVar(&r.sourceCluster, "sourceClusterName", "", "source deployment name, as the migration host reports it (required)")
	f.StringVar(&r.sourceProject, "sourceProjectId", "", "source project ID (default: the organization's only source project)")
	f.StringVarP(&r.user, "sourceUsername", "u", "", "user on the source (required unless --sourceManagedAuthentication)")
	f.StringVarP(&r.password, "sourcePassword", "p", "", "password of the source user (default $"+cli.EnvSourcePassword+", else prompted for or read from stdin)")
	f.BoolVar(&r.managed, "sourceManagedAuthentication", false, "the migration host supplies the source credentials")
	f.BoolVar(&r.ssl, "sourceSsl", false, "connect to the source with TLS")
	f.StringVar(&r.caPath, "sourceCACertificatePath", "", "CA certificate file on the migration host (implies --sourceSsl)")
	f.BoolVar(&r.drop, "drop", false, "drop the destination's data before the migration (asks to confirm)")
	f.BoolVar(&r.force, "force", false, "do not ask to confirm --drop")
	f.StringVar(&r.verification, "verificationMode", string(engine.VerifyContinuous), verificationHelp)
	f.StringVar(&r.hostnameSchema, "hostnameSchemaType", string(api.HostnamePublic), "how the migration host reaches the destination: PUBLIC, PRIVATE_LINK or VPC_PEERING")
	return r
}

// onRequest completes c as a command that sends a migration request
// (validation create, create): it adds the request flags and -o, and its RunE
// checks the flags, opens the session, builds the request (prompting for the
// source password and the --drop confirmation) and hands it to run.
func onRequest(e *env, flags *apiFlags, c *cobra.Command, run func(c *cobra.Command, f cli.Format, s *session, groupID string, mr api.MigrationRequest) error) *cobra.Command {
	r := addRequestFlags(c)
	return onSession(e, flags, c, r.check, func(c *cobra.Command, f cli.Format, s *session) error {
		groupID, mr, err := r.build(c.Context(), s)
		if err != nil {
			return err
		}
		return run(c, f, s, groupID, mr)
	})
}

// check validates the flags alone (usage errors), before any call.
func (r *requestFlags) check(c *cobra.Command) error {
	if err := requireFlags(c, "clusterName", "migrationHost", "sourceClusterName"); err != nil {
		return err
	}
	switch {
	case r.managed && r.user != "":
		return usageError{fmt.Errorf("--sourceManagedAuthentication and --sourceUsername exclude each other (see '%s --help')", c.CommandPath())}
	case !r.managed && r.user == "":
		return usageError{fmt.Errorf("--sourceUsername is required unless the migration host manages authentication (--sourceManagedAuthentication) (see '%s --help')", c.CommandPath())}
	case r.managed && r.password != "":
		return usageError{fmt.Errorf("--sourcePassword goes with --sourceUsername, not --sourceManagedAuthentication (see '%s --help')", c.CommandPath())}
	}
	if r.caPath != "" {
		r.ssl = true
	}
	return nil
}

// errAborted is returned when the operator answers no to --drop's question.
var errAborted = errors.New("aborted: the destination's data is not dropped and nothing was created")

// build resolves the projects, asks to confirm --drop and for a missing
// password (in that order, as the Atlas CLI does) and returns the request.
func (r *requestFlags) build(ctx context.Context, s *session) (string, api.MigrationRequest, error) {
	if err := engine.VerifyMode(r.verification).Validate(); err != nil {
		return "", api.MigrationRequest{}, usageError{fmt.Errorf("--verificationMode: %w", err)}
	}
	groupID, err := s.projectID(ctx, r.projectID)
	if err != nil {
		return "", api.MigrationRequest{}, err
	}
	sourceProject := r.sourceProject
	if sourceProject == "" {
		if sourceProject, err = s.sourceProjectID(ctx, groupID); err != nil {
			return "", api.MigrationRequest{}, err
		}
	}
	if r.drop && !r.force {
		ok, err := s.prompt.Confirm(fmt.Sprintf("Are you sure you want to drop the data of destination cluster %q?", r.cluster))
		if err != nil {
			return "", api.MigrationRequest{}, err
		}
		if !ok {
			return "", api.MigrationRequest{}, errAborted
		}
	}
	password := r.password
	if !r.managed && password == "" {
		password = os.Getenv(cli.EnvSourcePassword)
	}
	if !r.managed && password == "" {
		password, err = s.prompt.Secret(ctx, fmt.Sprintf("Password of source user %q: ", r.user))
		if errors.Is(err, cli.ErrNoInput) {
			return "", api.MigrationRequest{}, usageError{fmt.Errorf("no source password: give it on the terminal, on stdin, in $%s or with --sourcePassword", cli.EnvSourcePassword)}
		}
		if err != nil {
			return "", api.MigrationRequest{}, fmt.Errorf("read source password: %w", err)
		}
	}
	return groupID, api.MigrationRequest{
		Source: api.MigrationSource{
			ClusterName: r.sourceCluster, GroupID: sourceProject, ManagedAuthentication: r.managed,
			SSL: r.ssl, Username: r.user, Password: password, CACertificatePath: r.caPath,
		},
		Destination: api.MigrationDestination{
			ClusterName: r.cluster, GroupID: groupID, HostnameSchemaType: api.HostnameSchemaType(r.hostnameSchema),
		},
		MigrationHosts:      r.hosts,
		DropDestinationData: r.drop,
		VerificationMode:    r.verification,
	}, nil
}

// sourceProjectID finds the source project of the destination project's
// organization: livemigrate has one per organization (its agents' deployments).
func (s *session) sourceProjectID(ctx context.Context, groupID string) (string, error) {
	p, err := s.client.Project(ctx, groupID)
	if err != nil {
		return "", s.apiError("read project "+groupID, err)
	}
	avail, err := s.client.AvailableProjects(ctx, p.OrgID)
	if err != nil {
		return "", s.apiError("list source projects", err)
	}
	if len(avail) == 1 {
		return avail[0].ProjectID, nil
	}
	return "", usageError{fmt.Errorf("--sourceProjectId is required: organization %s has %d source projects (has a migration host registered?)", p.OrgID, len(avail))}
}
