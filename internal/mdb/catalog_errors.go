package mdb

import (
	"errors"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

const (
	codeNotImplemented  = 238
	codeInvalidOptions  = 72
	codeCmdNotSupported = 115
)

// IsRefused reports that the server answered a command with an error of its
// own (it does not support or accepts not this request), as opposed to a
// transient, network or authorization failure. The catalog stage reports such
// errors per namespace or index with the server's message.
func IsRefused(err error) bool {
	if err == nil || IsTransient(err) || IsUnauthorized(err) || IsAuthFailed(err) {
		return false
	}
	var se mongo.ServerError
	return errors.As(err, &se)
}

// IsNotImplemented reports a command or option the server does not implement
// (FerretDB's collMod, views, validators; a missing command on MongoDB).
func IsNotImplemented(err error) bool {
	return hasCode(err, codeNotImplemented, codeCommandNotFound, codeCmdNotSupported, codeInvalidOptions)
}
