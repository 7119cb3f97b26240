package mdb

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Error codes this project branches on.
const (
	codeNamespaceNotFound  = 26
	codeNamespaceExists    = 48
	codeIndexNotFound      = 27
	codeCommandNotFound    = 59
	codeIndexOptsConflict  = 85
	codeIndexKeySpecsConfl = 86
	codeAuthFailed         = 18
	codeUnauthorized       = 13
	codeDuplicateKey       = 11000
	codeInterrupted        = 11601
	codeNotWritablePrimary = 10107
	codeHostUnreachable    = 6
	codeHostNotFound       = 7
	codeNetworkTimeout     = 89
	codeShutdownInProgress = 91
	codePrimarySteppedDown = 189
	codeExceededTimeLimit  = 262
	codeSocketException    = 9001
	codeNotPrimaryNoSecOk  = 13435
	codeNotPrimaryOrSecond = 13436
	codeInterruptedShutdwn = 11600
	codeRetryChangeStream  = 234
	codeCappedPositionLost = 136
	codeOplogStartMissing  = 286 // ChangeStreamHistoryLost
)

func serverCode(err error) (int, bool) {
	var se mongo.ServerError
	if errors.As(err, &se) {
		for _, c := range []int{
			codeDuplicateKey, codeNamespaceNotFound, codeNamespaceExists, codeIndexNotFound,
			codeCommandNotFound, codeAuthFailed, codeUnauthorized, codeIndexOptsConflict, codeIndexKeySpecsConfl,
			codeCappedPositionLost, codeOplogStartMissing,
		} {
			if se.HasErrorCode(c) {
				return c, true
			}
		}
	}
	var ce mongo.CommandError
	if errors.As(err, &ce) {
		return int(ce.Code), true
	}
	return 0, false
}

func hasCode(err error, codes ...int) bool {
	var se mongo.ServerError
	if errors.As(err, &se) {
		for _, c := range codes {
			if se.HasErrorCode(c) {
				return true
			}
		}
	}
	return false
}

// IsDuplicateKey reports a unique-index violation.
func IsDuplicateKey(err error) bool { return mongo.IsDuplicateKeyError(err) }

// IsNamespaceNotFound reports a missing collection or database.
func IsNamespaceNotFound(err error) bool { return hasCode(err, codeNamespaceNotFound) }

// IsNamespaceExists reports that a collection already exists.
func IsNamespaceExists(err error) bool { return hasCode(err, codeNamespaceExists) }

// IsIndexNotFound reports a missing index.
func IsIndexNotFound(err error) bool { return hasCode(err, codeIndexNotFound) }

// IsCommandNotFound reports a command the server does not implement.
func IsCommandNotFound(err error) bool { return hasCode(err, codeCommandNotFound) }

// IsAuthFailed reports bad credentials.
func IsAuthFailed(err error) bool {
	return hasCode(err, codeAuthFailed) || strings.Contains(err.Error(), "auth error") ||
		strings.Contains(err.Error(), "Authentication failed")
}

// IsUnauthorized reports a missing privilege.
func IsUnauthorized(err error) bool { return hasCode(err, codeUnauthorized) }

// IsHistoryLost reports that the server no longer holds the requested change history.
func IsHistoryLost(err error) bool {
	return hasCode(err, codeCappedPositionLost, codeOplogStartMissing)
}

// IsTransient reports an error worth retrying: network trouble, a server
// stepping down or restarting, or an error labelled retryable.
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if mongo.IsNetworkError(err) || mongo.IsTimeout(err) {
		return true
	}
	var le mongo.LabeledError
	if errors.As(err, &le) && (le.HasErrorLabel("RetryableWriteError") || le.HasErrorLabel("TransientTransactionError") ||
		le.HasErrorLabel("NetworkError") || le.HasErrorLabel("ResumableChangeStreamError")) {
		return true
	}
	if hasCode(err, codeHostUnreachable, codeHostNotFound, codeNetworkTimeout, codeShutdownInProgress,
		codePrimarySteppedDown, codeExceededTimeLimit, codeSocketException, codeNotWritablePrimary,
		codeNotPrimaryNoSecOk, codeNotPrimaryOrSecond, codeInterruptedShutdwn, codeInterrupted, codeRetryChangeStream) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "connection reset") || strings.Contains(msg, "connection refused") ||
		strings.Contains(msg, "broken pipe") || strings.Contains(msg, "server selection error") ||
		strings.Contains(msg, "connection closed") || strings.Contains(msg, "incomplete read")
}

// Code returns the server error code of err, if any.
func Code(err error) (int, bool) { return serverCode(err) }

// Cursor errors (code 43 CursorNotFound, 237 CursorKilled, 175 QueryPlanKilled).
const (
	codeCursorNotFound  = 43
	codeCursorKilled    = 237
	codeQueryPlanKilled = 175
	codeInternalError   = 1
)

// ferretDBCursorEnded tells FerretDB's InternalError for a getMore whose
// cursor was cancelled with the connection that opened it: the getMore
// handler in its trace, and the cancellation as the cause, either the one
// FerretDB gives every cursor of a closing connection or the SQLite read's
// own. The getMore's own connection is alive (it got the reply), so the
// cancelled context can only be the cursor's.
func ferretDBCursorEnded(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "MsgGetMore") &&
		(strings.Contains(msg, "run exits:") || strings.Contains(msg, "context canceled"))
}

// IsCursorLost reports a cursor the server no longer has: killed, timed
// out, or dropped with the connection it was opened on. FerretDB drops
// every cursor of a connection when the connection closes: a getMore sent
// afterwards gets CursorNotFound, one already reading gets InternalError
// naming the cancellation (ferretDBCursorEnded). The read cannot go on; it
// must start again.
func IsCursorLost(err error) bool {
	return hasCode(err, codeCursorNotFound, codeCursorKilled, codeQueryPlanKilled) ||
		hasCode(err, codeInternalError) && ferretDBCursorEnded(err)
}

// IsReplyTooLarge reports a reply larger than the driver accepts (its
// 48 MB message limit): the server sent more than the batch can hold and
// the driver closed the connection. Smaller batches avoid it.
func IsReplyTooLarge(err error) bool {
	return err != nil && strings.Contains(err.Error(), "length of read message too large")
}

// IsRestartable reports an error after which a whole read (a namespace's
// copy) is worth starting again: a transient error, a lost cursor, or a
// reply too large for the driver.
func IsRestartable(err error) bool {
	return IsTransient(err) || IsCursorLost(err) || IsReplyTooLarge(err)
}

// Class names the kind of a failure for messages and for telling one
// failure from another: "reply too large", "cursor lost", "transient",
// "server <code>", or "" for anything else.
func Class(err error) string {
	switch {
	case err == nil:
		return ""
	case IsReplyTooLarge(err):
		return "reply too large"
	case IsCursorLost(err):
		return "cursor lost"
	case IsTransient(err):
		return "transient"
	}
	if c, ok := serverCode(err); ok {
		return "server " + strconv.Itoa(c)
	}
	return ""
}
