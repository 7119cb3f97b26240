package mdb

import (
	"errors"
	"fmt"
	"testing"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

func TestRestartableErrors(t *testing.T) {
	cursorNotFound := fmt.Errorf("read: %w", mongo.CommandError{Code: 43, Name: "CursorNotFound", Message: "cursor id 12 not found"})
	// The driver's own error text for a reply over its limit, as it
	// reaches us wrapped in a connection error.
	tooLarge := fmt.Errorf("read: %w", errors.New("connection(127.0.0.1:1[-8]) length of read message too large: length of read message too large"))
	dup := mongo.CommandError{Code: 11000, Name: "DuplicateKey", Message: "duplicate"}
	shutdown := mongo.CommandError{Code: 91, Name: "ShutdownInProgress"}
	for _, tc := range []struct {
		err         error
		restartable bool
		class       string
	}{
		{cursorNotFound, true, "cursor lost"},
		{mongo.CommandError{Code: 237, Name: "CursorKilled"}, true, "cursor lost"},
		// FerretDB's text for a getMore reading when the cursor's connection closed.
		{mongo.CommandError{Code: 1, Name: "InternalError", Message: "[msg_getmore.go:204 handler.(*Handler).MsgGetMore] " +
			"[conn.go:144 clientconn.(*conn).run.func1] run exits: [msg_body.go:62 wire.ReadMessage] zero bytes read"}, true, "cursor lost"},
		{mongo.CommandError{Code: 1, Name: "InternalError", Message: "[msg_getmore.go:204 handler.(*Handler).MsgGetMore] " +
			"[query_iterator.go:97 sqlite.(*queryIterator).Next] context canceled"}, true, "cursor lost"},
		{mongo.CommandError{Code: 1, Name: "InternalError", Message: "[msg_insert.go:90 handler.(*Handler).MsgInsert] context canceled"}, false, "server 1"},
		{mongo.CommandError{Code: 1, Name: "InternalError", Message: "no such table"}, false, "server 1"},
		{tooLarge, true, "reply too large"},
		{shutdown, true, "transient"},
		{dup, false, "server 11000"},
		{errors.New("something else"), false, ""},
		{nil, false, ""},
	} {
		if got := IsRestartable(tc.err); got != tc.restartable {
			t.Errorf("IsRestartable(%v) = %v, want %v", tc.err, got, tc.restartable)
		}
		if got := Class(tc.err); got != tc.class {
			t.Errorf("Class(%v) = %q, want %q", tc.err, got, tc.class)
		}
	}
	if IsCursorLost(tooLarge) || !IsCursorLost(cursorNotFound) || !IsReplyTooLarge(tooLarge) || IsReplyTooLarge(cursorNotFound) {
		t.Error("IsCursorLost / IsReplyTooLarge mix up their errors")
	}
}
