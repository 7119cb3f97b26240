// Package clone is the initial copy: documents move as raw BSON from a source
// cursor to unordered bulk inserts on the destination, never decoded into
// maps, several namespaces at a time (largest first), with a cap on the bytes
// in flight that does not grow with the data. docs/design/copy.md explains
// the choices.
package clone
