package apply

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/livemigrate/livemigrate/internal/migration"
)

// errUnsafe says an update description does not fit the document it is
// applied to; the caller falls back to the source's current state.
var errUnsafe = errors.New("update does not fit the document")

// applyUpdate applies u to doc in memory: arrays truncated first, then
// fields removed, then fields set (dotted paths; numeric parts index arrays).
func applyUpdate(doc bson.Raw, u *migration.UpdateDescription) (bson.Raw, error) {
	var d bson.D
	if err := bson.Unmarshal(doc, &d); err != nil {
		return nil, err
	}
	for _, t := range u.TruncatedArrays {
		if err := truncate(&d, strings.Split(t.Field, "."), int(t.NewSize)); err != nil {
			return nil, err
		}
	}
	for _, f := range u.RemovedFields {
		if err := unset(&d, strings.Split(f, ".")); err != nil {
			return nil, err
		}
	}
	if len(u.UpdatedFields) > 0 {
		elems, err := u.UpdatedFields.Elements()
		if err != nil {
			return nil, err
		}
		for _, el := range elems {
			if el.Key() == "_id" {
				continue
			}
			var v any
			if err := el.Value().Unmarshal(&v); err != nil {
				return nil, err
			}
			if err := set(&d, strings.Split(el.Key(), "."), v); err != nil {
				return nil, err
			}
		}
	}
	return bson.Marshal(d)
}

// container walks to the parent of the last path part. create makes
// missing documents on the way (as $set does).
func walk(root *bson.D, parts []string, create bool) (any, error) {
	var cur any = root
	for _, p := range parts {
		switch c := cur.(type) {
		case *bson.D:
			i := index(*c, p)
			if i < 0 {
				if !create {
					return nil, nil
				}
				*c = append(*c, bson.E{Key: p, Value: bson.D{}})
				i = len(*c) - 1
			}
			cur = ptrTo(&(*c)[i].Value)
		case *bson.A:
			n, err := strconv.Atoi(p)
			if err != nil || n < 0 || n >= len(*c) {
				return nil, fmt.Errorf("%w: array index %q", errUnsafe, p)
			}
			cur = ptrTo(&(*c)[n])
		default:
			return nil, fmt.Errorf("%w: %q is not a document or array", errUnsafe, p)
		}
		if cur == nil {
			return nil, fmt.Errorf("%w: %q is a scalar", errUnsafe, p)
		}
	}
	return cur, nil
}

// ptrTo returns a pointer to the document or array held in *v, or nil.
func ptrTo(v *any) any {
	switch x := (*v).(type) {
	case bson.D:
		*v = &x
		return (*v).(*bson.D)
	case bson.A:
		*v = &x
		return (*v).(*bson.A)
	case *bson.D, *bson.A:
		return x
	}
	return nil
}

func index(d bson.D, key string) int {
	for i, e := range d {
		if e.Key == key {
			return i
		}
	}
	return -1
}

func set(root *bson.D, parts []string, v any) error {
	parent, err := walk(root, parts[:len(parts)-1], true)
	if err != nil {
		return err
	}
	last := parts[len(parts)-1]
	switch c := parent.(type) {
	case *bson.D:
		if i := index(*c, last); i >= 0 {
			(*c)[i].Value = v
		} else {
			*c = append(*c, bson.E{Key: last, Value: v})
		}
		return nil
	case *bson.A:
		n, err := strconv.Atoi(last)
		if err != nil || n < 0 || n > len(*c) {
			return fmt.Errorf("%w: array index %q", errUnsafe, last)
		}
		if n == len(*c) {
			*c = append(*c, v)
		} else {
			(*c)[n] = v
		}
		return nil
	}
	return fmt.Errorf("%w: no container for %q", errUnsafe, last)
}

func unset(root *bson.D, parts []string) error {
	parent, err := walk(root, parts[:len(parts)-1], false)
	if err != nil || parent == nil {
		return err
	}
	last := parts[len(parts)-1]
	switch c := parent.(type) {
	case *bson.D:
		if i := index(*c, last); i >= 0 {
			*c = append((*c)[:i], (*c)[i+1:]...)
		}
		return nil
	case *bson.A:
		if n, err := strconv.Atoi(last); err == nil && n >= 0 && n < len(*c) {
			(*c)[n] = nil // $unset of an array element leaves null
		}
		return nil
	}
	return nil
}

func truncate(root *bson.D, parts []string, size int) error {
	parent, err := walk(root, parts[:len(parts)-1], false)
	if err != nil || parent == nil {
		return fmt.Errorf("%w: no array at %s", errUnsafe, strings.Join(parts, "."))
	}
	d, ok := parent.(*bson.D)
	if !ok {
		return fmt.Errorf("%w: no array at %s", errUnsafe, strings.Join(parts, "."))
	}
	i := index(*d, parts[len(parts)-1])
	if i < 0 {
		return fmt.Errorf("%w: no array at %s", errUnsafe, strings.Join(parts, "."))
	}
	var a bson.A
	switch x := (*d)[i].Value.(type) {
	case bson.A:
		a = x
	case *bson.A:
		a = *x
	}
	if a == nil || size > len(a) {
		return fmt.Errorf("%w: no array of %d+ elements at %s", errUnsafe, size, strings.Join(parts, "."))
	}
	(*d)[i].Value = a[:size]
	return nil
}
