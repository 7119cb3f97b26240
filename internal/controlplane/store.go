package controlplane

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver (pure Go, no cgo)
)

//go:embed schema/*.sql
var schemaFS embed.FS

// store is the control plane's SQLite database and the only code that runs
// SQL: one method per query or per transaction, named for what it does,
// grouped by concern in store_*.go. Methods return domain values and
// errNotFound / errExists rather than database/sql errors. It uses one
// connection: every statement is serialized, so a transaction never waits on
// another writer, and with synchronous=FULL a committed transaction is on
// disk before the handler that made it answers.
type store struct {
	db *sql.DB
	// q is where the methods' queries run: db, or the transaction of Tx.
	q querier
	// inTx tells that q is a transaction.
	inTx bool
}

// querier is what store methods run their statements on: *sql.DB or *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Errors of store methods, for callers to branch on (errors.Is).
var (
	// errNotFound: the row asked for does not exist.
	errNotFound = errors.New("not found in the store")
	// errExists: a row with the same unique key (a name) exists.
	errExists = errors.New("already exists in the store")
)

// rowScanner is a *sql.Row or *sql.Rows.
type rowScanner interface{ Scan(dest ...any) error }

// queryAll runs query on q and returns every row as scan reads it.
func queryAll[T any](ctx context.Context, q querier, scan func(rowScanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// scanString reads a row of one text column (for queryAll).
func scanString(row rowScanner) (string, error) {
	var v string
	err := row.Scan(&v)
	return v, err
}

// notFoundIf maps sql.ErrNoRows to errNotFound.
func notFoundIf(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return errNotFound
	}
	return err
}

// existsIf maps a UNIQUE constraint violation to errExists.
func existsIf(err error) error {
	if isUniqueViolation(err) {
		return errExists
	}
	return err
}

// Tx runs f with a store whose methods run in one transaction, committed
// when f returns nil and rolled back otherwise. Inside a transaction (the
// store Tx gives f) f runs in that same transaction.
func (s *store) Tx(ctx context.Context, f func(st *store) error) error {
	if s.inTx {
		return f(s)
	}
	return s.tx(ctx, func(tx *sql.Tx) error { return f(&store{db: s.db, q: tx, inTx: true}) })
}

// fixedFile is a store file whose mode openStore tightened.
type fixedFile struct {
	path string
	was  fs.FileMode
}

// openStore opens (creating if needed) the SQLite file at path and applies
// every embedded schema migration not yet applied. The file and its WAL and
// shared-memory files hold secrets (sealed) and hashes: they are created
// 0600, and an existing one readable or writable by others is set to 0600
// (reported in fixed).
func openStore(ctx context.Context, path string) (_ *store, fixed []fixedFile, _ error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("open store %s: %w", path, err)
	}
	f.Close()
	if fixed, err = tightenModes(path); err != nil {
		return nil, nil, err
	}
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)", "foreign_keys(1)", "secure_delete(1)"} {
		q.Add("_pragma", p)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, nil, fmt.Errorf("open store %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	s := &store{db: db, q: db}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("migrate store %s: %w", path, err)
	}
	// SQLite creates the WAL and shared-memory files with the main file's
	// mode; check them once they exist.
	more, err := tightenModes(path)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return s, append(fixed, more...), nil
}

// tightenModes sets the store file and its -wal and -shm files to 0600 when
// their mode gives access to group or others.
func tightenModes(path string) ([]fixedFile, error) {
	var fixed []fixedFile
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		st, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("store file %s: %w", p, err)
		}
		if st.Mode().Perm()&0o077 == 0 {
			continue
		}
		if err := os.Chmod(p, 0o600); err != nil {
			return nil, fmt.Errorf("store file %s is readable by others (mode %v) and cannot be made 0600: %w", p, st.Mode().Perm(), err)
		}
		fixed = append(fixed, fixedFile{path: p, was: st.Mode().Perm()})
	}
	return fixed, nil
}

func (s *store) Close() error { return s.db.Close() }

// Ping checks that the database answers.
func (s *store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

func (s *store) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return err
	}
	names, err := fs.Glob(schemaFS, "schema/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		base := strings.TrimPrefix(name, "schema/")
		version, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("schema file %s: want NNNN_name.sql", name)
		}
		body, err := schemaFS.ReadFile(name)
		if err != nil {
			return err
		}
		err = s.tx(ctx, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return fmt.Errorf("apply %s: %w", base, err)
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, version, time.Now().UnixMilli())
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// tx runs f in a transaction and commits it, or rolls back when f fails.
// Code outside the store uses Tx.
func (s *store) tx(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// ms and fromMS convert times to the stored unix milliseconds.
func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

func nullMS(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMS(v.Int64)
	return &t
}

// isUniqueViolation reports whether err is SQLite's UNIQUE constraint error.
func isUniqueViolation(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}
