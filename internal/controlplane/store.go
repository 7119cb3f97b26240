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

// store is the control plane's SQLite database. It uses one connection: every
// statement is serialized, so a transaction never waits on another writer, and
// with synchronous=FULL a committed transaction is on disk before the handler
// that made it answers.
type store struct {
	db *sql.DB
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
	s := &store{db: db}
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

var errNoRows = sql.ErrNoRows

func isNoRows(err error) bool { return errors.Is(err, errNoRows) }
