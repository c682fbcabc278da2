package fhirmap

import (
	"crypto/sha1"
	"encoding/hex"
	"unsafe"

	d4 "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
)

// idNamespace is the UUID namespace of resultgate's name-based (version 5)
// resource UUIDs. It was generated once at random and must never change:
// changing it changes every resource id and breaks update-in-place.
var idNamespace = [16]byte{0x6b, 0x1f, 0x3c, 0x52, 0x9a, 0x0e, 0x4d, 0x7b, 0x8c, 0x21, 0x5e, 0x94, 0xd3, 0x0a, 0x67, 0xf8}

// rid is a resource's id, its fullUrl and the URL its entry PUTs to.
type rid struct {
	id  string // Options.IDPrefix + uuid
	urn string // "urn:uuid:" + uuid, the fullUrl and in-Bundle reference
	url string // kind + "/" + id, the entry's request URL
}

// newID derives a resource id from kind and an identity key: a version 5
// (SHA-1, name-based) UUID of IDPrefix, kind and key. The same inputs always
// give the same id.
func (b *builder) newID(kind, key string) rid {
	// The hash input is namespace, prefix, 0, kind, 0, key, written into the
	// builder's scratch buffer and hashed in one call.
	in := append(b.scratch[:0], idNamespace[:]...)
	in = append(in, b.opts.IDPrefix...)
	in = append(in, 0)
	in = append(in, kind...)
	in = append(in, 0)
	in = append(in, key...)
	b.scratch = in
	u := sha1.Sum(in)
	u[6] = (u[6] & 0x0f) | 0x50 // version 5
	u[8] = (u[8] & 0x3f) | 0x80 // RFC 4122 variant
	// One string holds all three: "urn:uuid:" UUID kind "/" IDPrefix UUID.
	const urnLen = len("urn:uuid:") + 36
	p := len(b.opts.IDPrefix)
	buf := b.ar.bytes.take(urnLen + len(kind) + 1 + p + 36)
	copy(buf, "urn:uuid:")
	hex.Encode(buf[9:17], u[0:4])
	buf[17] = '-'
	hex.Encode(buf[18:22], u[4:6])
	buf[22] = '-'
	hex.Encode(buf[23:27], u[6:8])
	buf[27] = '-'
	hex.Encode(buf[28:32], u[8:10])
	buf[32] = '-'
	hex.Encode(buf[33:urnLen], u[10:16])
	i := urnLen + copy(buf[urnLen:], kind)
	buf[i] = '/'
	i++
	copy(buf[i+copy(buf[i:], b.opts.IDPrefix):], buf[9:urnLen])
	s := unsafe.String(&buf[0], len(buf))
	return rid{urn: s[:urnLen], url: s[urnLen:], id: s[i:]}
}

// refTo returns an in-Bundle reference to the resource with id.
func (a *arena) refTo(id rid) *d4.Reference {
	x := a.refs.get()
	x.s.Value = id.urn
	x.uri.Uri = &x.s
	x.ref.Reference = &x.uri
	return &x.ref
}
