package verify

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/livemigrate/livemigrate/internal/migration"
)

// kind is how one document differs.
type kind byte

const (
	kindMissing   kind = 'm' // on the source only
	kindExtra     kind = 'e' // on the destination only
	kindDiffering kind = 'd' // on both, other contents
)

// recordFile is an append-then-read temporary file of length-prefixed
// records: [tag byte][uint32 length][payload]. Differences and spilled
// fingerprints go to disk so memory stays flat however much differs.
type recordFile struct {
	f *os.File
	w *bufio.Writer
	n int64
}

func newRecordFile(dir string) (*recordFile, error) {
	f, err := os.CreateTemp(dir, "livemigrate-verify-*")
	if err != nil {
		return nil, fmt.Errorf("create spill file: %w", err)
	}
	return &recordFile{f: f, w: bufio.NewWriterSize(f, 256<<10)}, nil
}

func (r *recordFile) write(tag byte, payload ...[]byte) error {
	var n int
	for _, p := range payload {
		n += len(p)
	}
	var hdr [5]byte
	hdr[0] = tag
	binary.LittleEndian.PutUint32(hdr[1:], uint32(n))
	if _, err := r.w.Write(hdr[:]); err != nil {
		return fmt.Errorf("write spill file: %w", err)
	}
	for _, p := range payload {
		if _, err := r.w.Write(p); err != nil {
			return fmt.Errorf("write spill file: %w", err)
		}
	}
	r.n++
	return nil
}

// each flushes the file and calls fn for every record in order. The payload
// is only valid during fn.
func (r *recordFile) each(fn func(tag byte, payload []byte) error) error {
	if err := r.w.Flush(); err != nil {
		return fmt.Errorf("flush spill file: %w", err)
	}
	if _, err := r.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("rewind spill file: %w", err)
	}
	defer func() { _, _ = r.f.Seek(0, io.SeekEnd) }()
	br := bufio.NewReaderSize(r.f, 256<<10)
	var hdr [5]byte
	var buf []byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("read spill file: %w", err)
		}
		n := binary.LittleEndian.Uint32(hdr[1:])
		if cap(buf) < int(n) {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(br, buf); err != nil {
			return fmt.Errorf("read spill file: %w", err)
		}
		if err := fn(hdr[0], buf); err != nil {
			return err
		}
	}
}

func (r *recordFile) close() {
	_ = r.f.Close()
	_ = os.Remove(r.f.Name())
}

// diffBuckets is pass 2: it scans both sides again, keeps the fingerprints of
// documents in the given buckets, and writes each _id that is missing,
// extra or different to out. Buckets are grouped so that no group holds
// more than MemoryEntries fingerprints; fingerprints are spilled per group
// to disk during the scans and joined one group at a time.
func (v *Verifier) diffBuckets(ctx context.Context, ns migration.Namespace, buckets []int, sizes []int64, out *recordFile) error {
	group := make(map[int]int, len(buckets)) // bucket → group
	groups, held := 0, int64(0)
	for i, b := range buckets {
		if held > 0 && held+sizes[i] > int64(v.opts.MemoryEntries) {
			groups++
			held = 0
		}
		group[b] = groups
		held += sizes[i]
	}
	groups++

	var files [2][]*recordFile
	defer func() {
		for _, fs := range files {
			for _, f := range fs {
				f.close()
			}
		}
	}()
	for side := range files {
		for range groups {
			f, err := newRecordFile(v.opts.TempDir)
			if err != nil {
				return err
			}
			files[side] = append(files[side], f)
		}
	}
	err := v.sides(ctx, func(ctx context.Context, side int, c *mongo.Client) error {
		h := hasher{ignoreFieldOrder: v.opts.IgnoreFieldOrder}
		n := 0
		return v.scan(ctx, side, c, ns, func(key []byte, doc bson.Raw) error {
			if err := v.paced(ctx, &n); err != nil {
				return err
			}
			g, ok := group[bucketOf(key, v.opts.Buckets)]
			if !ok {
				return nil
			}
			fp, err := h.hash(doc)
			if err != nil {
				return fmt.Errorf("%s _id %s: %w", ns, idString(key), err)
			}
			return files[side][g].write(0, fp[:], key)
		})
	})
	if err != nil {
		return err
	}
	for g := range groups {
		src := make(map[string]docHash, files[sideSource][g].n)
		err := files[sideSource][g].each(func(_ byte, p []byte) error {
			src[string(p[16:])] = docHash(p[:16])
			return nil
		})
		if err != nil {
			return err
		}
		err = files[sideDestination][g].each(func(_ byte, p []byte) error {
			fp, ok := src[string(p[16:])]
			switch {
			case !ok:
				return out.write(byte(kindExtra), p[16:])
			case fp != docHash(p[:16]):
				delete(src, string(p[16:]))
				return out.write(byte(kindDiffering), p[16:])
			}
			delete(src, string(p[16:]))
			return nil
		})
		if err != nil {
			return err
		}
		for k := range src {
			if err := out.write(byte(kindMissing), []byte(k)); err != nil {
				return err
			}
		}
	}
	return nil
}
