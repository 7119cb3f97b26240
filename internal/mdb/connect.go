package mdb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"
)

// ConnectOptions adjusts Connect.
type ConnectOptions struct {
	// AppName is reported to the server (default "livemigrate").
	AppName string
	// Timeout bounds the first round trip (default 15s).
	Timeout time.Duration
}

// Connect opens a client and proves it works with a ping, turning the
// driver's errors into messages that name what is wrong and what to do.
func Connect(ctx context.Context, role string, uri URI, o ConnectOptions) (*mongo.Client, error) {
	if err := uri.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", role, err)
	}
	cs, err := connstring.ParseAndValidate(uri.Raw())
	if err != nil {
		return nil, fmt.Errorf("%s connection string %s: %s", role, uri, RedactText(err.Error()))
	}
	if cs.SSLCaFileSet {
		if _, err := os.Stat(cs.SSLCaFile); err != nil {
			return nil, fmt.Errorf("%s: TLS CA file %q cannot be read (%v): give the path of a PEM file on this host", role, cs.SSLCaFile, errors.Unwrap(err))
		}
	}
	if o.AppName == "" {
		o.AppName = "livemigrate"
	}
	if o.Timeout == 0 {
		o.Timeout = 15 * time.Second
	}
	opts := options.Client().ApplyURI(uri.Raw()).SetAppName(o.AppName).
		SetServerSelectionTimeout(o.Timeout).SetConnectTimeout(o.Timeout)
	c, err := mongo.Connect(opts)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %s", role, uri, RedactText(err.Error()))
	}
	pctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	if err := c.Database("admin").RunCommand(pctx, bson.D{{Key: "ping", Value: 1}}).Err(); err != nil {
		_ = c.Disconnect(context.Background())
		return nil, fmt.Errorf("%s %s: %s", role, uri, explain(err))
	}
	return c, nil
}

// explain turns a connection failure into advice.
func explain(err error) string {
	msg := RedactText(err.Error())
	switch {
	case IsAuthFailed(err):
		return "authentication failed: check the user name, password and authSource (" + msg + ")"
	case strings.Contains(msg, "certificate"), strings.Contains(msg, "x509"), strings.Contains(msg, "tls:"):
		return "TLS handshake failed: check tls=true and that tlsCAFile is the CA that signed the server's certificate (" + msg + ")"
	case strings.Contains(msg, "connection refused"):
		return "connection refused: is the server running and is the host:port right? (" + msg + ")"
	case strings.Contains(msg, "server selection"), strings.Contains(msg, "timeout"), strings.Contains(msg, "deadline"):
		return "server not reachable in time: check the host, port, firewall and TLS settings (" + msg + ")"
	}
	return msg
}
