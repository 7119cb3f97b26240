package verify

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// docHash is the 128-bit fingerprint of one document.
type docHash [16]byte

// digest is the order-independent summary of a set of documents: how many,
// and the sum modulo 2^128 of their fingerprints. Adding documents in any
// order gives the same digest, so both sides can be scanned unsorted.
type digest struct {
	Count  int64
	Hi, Lo uint64
}

func (d *digest) add(h docHash) {
	var carry uint64
	d.Lo, carry = bits.Add64(d.Lo, binary.BigEndian.Uint64(h[8:]), 0)
	d.Hi, _ = bits.Add64(d.Hi, binary.BigEndian.Uint64(h[:8]), carry)
	d.Count++
}

// idKey returns the bytes that identify a document: the BSON type of its
// _id followed by the value's bytes. int32(5) and int64(5) are different keys.
func idKey(v bson.RawValue) []byte {
	b := make([]byte, 0, 1+len(v.Value))
	b = append(b, byte(v.Type))
	return append(b, v.Value...)
}

// idValue turns a key from idKey back into a value for a query.
func idValue(key []byte) bson.RawValue {
	return bson.RawValue{Type: bson.Type(key[0]), Value: key[1:]}
}

// idString renders an _id for reports as extended JSON.
func idString(key []byte) string { return idValue(key).String() }

// bucketOf maps an _id key to one of k buckets. It must be stable across
// processes: resumed runs rely on the same key landing in the same bucket.
func bucketOf(key []byte, k int) int {
	s := sha256.Sum256(key)
	return int(binary.BigEndian.Uint64(s[:8]) % uint64(k))
}

// hasher fingerprints documents, byte-exact or ignoring field order.
type hasher struct {
	ignoreFieldOrder bool
	buf              []byte // scratch for canonical forms
}

// hash returns the fingerprint of doc.
func (h *hasher) hash(doc bson.Raw) (docHash, error) {
	b := []byte(doc)
	if h.ignoreFieldOrder {
		var err error
		h.buf, err = canonical(h.buf[:0], doc)
		if err != nil {
			return docHash{}, err
		}
		b = h.buf
	}
	s := sha256.Sum256(b)
	var d docHash
	copy(d[:], s[:16])
	return d, nil
}

// canonical appends doc to dst with the keys of every embedded document
// sorted (recursively, also inside arrays); array element order is kept, as
// are all types and values.
func canonical(dst []byte, doc bson.Raw) ([]byte, error) {
	elems, err := doc.Elements()
	if err != nil {
		return dst, fmt.Errorf("canonicalize document: %w", err)
	}
	slices.SortStableFunc(elems, func(a, b bson.RawElement) int { return strings.Compare(a.Key(), b.Key()) })
	idx, dst := bsoncore.ReserveLength(dst)
	for _, e := range elems {
		v := e.Value()
		dst = bsoncore.AppendHeader(dst, bsoncore.Type(v.Type), e.Key())
		switch v.Type {
		case bson.TypeEmbeddedDocument:
			dst, err = canonical(dst, bson.Raw(v.Value))
		case bson.TypeArray:
			dst, err = canonicalArray(dst, bson.Raw(v.Value))
		default:
			dst = append(dst, v.Value...)
		}
		if err != nil {
			return dst, err
		}
	}
	dst = append(dst, 0)
	return bsoncore.UpdateLength(dst, idx, int32(len(dst)-int(idx))), nil
}

func canonicalArray(dst []byte, arr bson.Raw) ([]byte, error) {
	vals, err := arr.Values()
	if err != nil {
		return dst, fmt.Errorf("canonicalize array: %w", err)
	}
	idx, dst := bsoncore.ReserveLength(dst)
	for i, v := range vals {
		dst = bsoncore.AppendHeader(dst, bsoncore.Type(v.Type), fmt.Sprint(i))
		switch v.Type {
		case bson.TypeEmbeddedDocument:
			dst, err = canonical(dst, bson.Raw(v.Value))
		case bson.TypeArray:
			dst, err = canonicalArray(dst, bson.Raw(v.Value))
		default:
			dst = append(dst, v.Value...)
		}
		if err != nil {
			return dst, err
		}
	}
	dst = append(dst, 0)
	return bsoncore.UpdateLength(dst, idx, int32(len(dst)-int(idx))), nil
}
