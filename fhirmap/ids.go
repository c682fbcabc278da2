package fhirmap

import (
	"crypto/sha1"
	"encoding/hex"

	d4 "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
)

// idNamespace is the UUID namespace of resultgate's name-based (version 5)
// resource UUIDs. It was generated once at random and must never change:
// changing it changes every resource id and breaks update-in-place.
var idNamespace = [16]byte{0x6b, 0x1f, 0x3c, 0x52, 0x9a, 0x0e, 0x4d, 0x7b, 0x8c, 0x21, 0x5e, 0x94, 0xd3, 0x0a, 0x67, 0xf8}

// rid is a resource's id and the UUID its fullUrl (urn:uuid:) uses.
type rid struct {
	id   string // Options.IDPrefix + uuid
	uuid string
	urn  string // "urn:uuid:" + uuid, the fullUrl and in-Bundle reference
}

// newID derives a resource id from kind and an identity key: a version 5
// (SHA-1, name-based) UUID of IDPrefix, kind and key. The same inputs always
// give the same id.
func (b *builder) newID(kind, key string) rid {
	// The hash input is namespace, prefix, 0, kind, 0, key, written into one
	// buffer (on the stack for the usual key lengths) and hashed in one call.
	in := make([]byte, 0, 256)
	in = append(in, idNamespace[:]...)
	in = append(in, b.opts.IDPrefix...)
	in = append(in, 0)
	in = append(in, kind...)
	in = append(in, 0)
	in = append(in, key...)
	u := sha1.Sum(in)
	u[6] = (u[6] & 0x0f) | 0x50 // version 5
	u[8] = (u[8] & 0x3f) | 0x80 // RFC 4122 variant
	// One string holds the id (IDPrefix + UUID); the UUID is its tail.
	p := len(b.opts.IDPrefix)
	buf := make([]byte, p+36)
	copy(buf, b.opts.IDPrefix)
	hex.Encode(buf[p:p+8], u[0:4])
	buf[p+8] = '-'
	hex.Encode(buf[p+9:p+13], u[4:6])
	buf[p+13] = '-'
	hex.Encode(buf[p+14:p+18], u[6:8])
	buf[p+18] = '-'
	hex.Encode(buf[p+19:p+23], u[8:10])
	buf[p+23] = '-'
	hex.Encode(buf[p+24:], u[10:16])
	id := string(buf)
	return rid{id: id, uuid: id[p:], urn: "urn:uuid:" + id[p:]}
}

// refTo returns an in-Bundle reference to the resource with id.
func refTo(id rid) *d4.Reference {
	a := &struct {
		ref d4.Reference
		uri d4.Reference_Uri
		s   d4.String
	}{}
	a.s.Value = id.urn
	a.uri.Uri = &a.s
	a.ref.Reference = &a.uri
	return &a.ref
}
