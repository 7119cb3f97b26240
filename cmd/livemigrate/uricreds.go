package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/livemigrate/livemigrate/internal/cli"
	"github.com/livemigrate/livemigrate/internal/mdb"
)

// uriCreds keeps passwords off the command line for commands that take
// --source and --destination connection strings (sync, verify): a
// connection string may be given as @file or in $LIVEMIGRATE_<ROLE>_URI,
// and the password of its user in a file (--<role>-password-file) or in
// $LIVEMIGRATE_<ROLE>_PASSWORD. A password written in the flag itself works
// but is visible to every user of the machine (ps): it draws a warning.
type uriCreds struct {
	sourcePasswordFile, destinationPasswordFile string
}

const envDestinationPassword = "LIVEMIGRATE_DESTINATION_PASSWORD"

func (c *uriCreds) addFlags(f *pflag.FlagSet) {
	f.StringVar(&c.sourcePasswordFile, "source-password-file", "", "file holding the source user's password ($"+cli.EnvSourcePassword+" otherwise); --source may also be @file or $LIVEMIGRATE_SOURCE_URI")
	f.StringVar(&c.destinationPasswordFile, "destination-password-file", "", "file holding the destination user's password ($"+envDestinationPassword+" otherwise); --destination may also be @file or $LIVEMIGRATE_DESTINATION_URI")
}

// resolve returns the connection string for role ("source" or
// "destination") from the flag value, with the password from a file or the
// environment put in. An empty result means none was given.
func (c *uriCreds) resolve(logger *slog.Logger, role, flagValue string) (string, error) {
	passwordFile, passwordEnv := c.sourcePasswordFile, cli.EnvSourcePassword
	if role == "destination" {
		passwordFile, passwordEnv = c.destinationPasswordFile, envDestinationPassword
	}
	uri, fromFlag := flagValue, true
	switch {
	case strings.HasPrefix(uri, "@"):
		b, err := os.ReadFile(uri[1:])
		if err != nil {
			return "", fmt.Errorf("--%s %s: %w", role, uri, err)
		}
		uri, fromFlag = strings.TrimSpace(string(b)), false
	case uri == "":
		uri, fromFlag = os.Getenv("LIVEMIGRATE_"+strings.ToUpper(role)+"_URI"), false
	}
	if uri == "" {
		return "", nil
	}
	cs, err := mdb.ParseURI(uri)
	if err != nil {
		return "", usageError{fmt.Errorf("--%s: %w", role, err)}
	}
	if fromFlag && cs.HasPassword {
		logger.Warn("a password in a connection string on the command line is visible to other users of this machine (ps); use a password file, the environment or @file", "flag", "--"+role)
	}
	password := os.Getenv(passwordEnv)
	if passwordFile != "" {
		b, err := os.ReadFile(passwordFile)
		if err != nil {
			return "", fmt.Errorf("--%s-password-file: %w", role, err)
		}
		password = strings.TrimRight(string(b), "\r\n")
	}
	if password == "" {
		return uri, nil
	}
	if !cs.HasUser {
		if passwordFile == "" {
			return uri, nil // the variable is for another use (a migration's source)
		}
		return "", usageError{errors.New("--" + role + "-password-file needs a user name in the connection string (mongodb://user@host/…)")}
	}
	cs.Password, cs.HasPassword = password, true
	return cs.String(), nil
}
