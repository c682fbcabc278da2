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
}

// newID derives a resource id from kind and an identity key: a version 5
// (SHA-1, name-based) UUID of IDPrefix, kind and key. The same inputs always
// give the same id.
func (b *builder) newID(kind, key string) rid {
	h := sha1.New()
	h.Write(idNamespace[:])
	h.Write([]byte(b.opts.IDPrefix))
	h.Write([]byte{0})
	h.Write([]byte(kind))
	h.Write([]byte{0})
	h.Write([]byte(key))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = (u[6] & 0x0f) | 0x50 // version 5
	u[8] = (u[8] & 0x3f) | 0x80 // RFC 4122 variant
	var buf [36]byte
	hex.Encode(buf[0:8], u[0:4])
	buf[8] = '-'
	hex.Encode(buf[9:13], u[4:6])
	buf[13] = '-'
	hex.Encode(buf[14:18], u[6:8])
	buf[18] = '-'
	hex.Encode(buf[19:23], u[8:10])
	buf[23] = '-'
	hex.Encode(buf[24:], u[10:])
	s := string(buf[:])
	return rid{id: b.opts.IDPrefix + s, uuid: s}
}

// refTo returns an in-Bundle reference to the resource with id.
func refTo(id rid) *d4.Reference {
	return &d4.Reference{Reference: &d4.Reference_Uri{Uri: &d4.String{Value: "urn:uuid:" + id.uuid}}}
}
