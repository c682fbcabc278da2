package hold

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/fnv"
)

// DefaultPartitions is the number of inbound partitions when none is configured.
const DefaultPartitions = 16

// PatientKeyLen is the length of a patient key: 32 hex characters (128 bits).
const PatientKeyLen = 32

// PatientKey returns the keyed hash of a patient identifier: HMAC-SHA256 under
// secret, truncated to 128 bits, as 32 lowercase hex characters. It is what
// subjects, headers, bucket keys and logs carry instead of the identifier (no PHI).
// pid should be the canonical identifier including its assigning authority, as
// PatientIdentity builds it, so that equal MRNs from different authorities differ.
// An empty pid yields "".
func PatientKey(secret []byte, pid string) string {
	if pid == "" {
		return ""
	}
	var sum [sha256.Size]byte
	return hex.EncodeToString(macSum(sum[:0], secret, pid)[:PatientKeyLen/2])
}

// PatientIdentity joins a PID-3 identifier (CX.1) and its assigning authority
// (CX.4: namespace ID, universal ID, universal ID type) unambiguously: the parts
// are separated by NUL, which HL7 text cannot contain. Trailing empty authority
// parts are dropped, so ("1", "HOSP") and ("1", "HOSP", "", "") are one identity.
func PatientIdentity(id string, authority ...string) string {
	for len(authority) > 0 && authority[len(authority)-1] == "" {
		authority = authority[:len(authority)-1]
	}
	n := len(id)
	for _, a := range authority {
		n += 1 + len(a)
	}
	b := make([]byte, 0, n)
	b = append(b, id...)
	for _, a := range authority {
		b = append(b, 0)
		b = append(b, a...)
	}
	return string(b)
}

// Partition maps a patient key to one of n partition tokens "p00".."p<n-1>" (two
// digits at least, wider when n > 100). All messages of one patient land in one
// partition, which keeps their order. An empty key (no PID) maps to the fixed
// partition NoPatientPartition. n <= 0 means DefaultPartitions.
//
// Changing n moves patients between partitions: do it only with HL7_IN drained
// (every stored message processed), or a patient's next message may overtake an
// earlier one still waiting in its old partition.
func Partition(patientKey string, n int) string {
	if n <= 0 {
		n = DefaultPartitions
	}
	width := 2
	for m := n - 1; m >= 100; m /= 10 {
		width++
	}
	var idx uint64
	if len(patientKey) >= 16 {
		var raw [8]byte
		if _, err := hex.Decode(raw[:], []byte(patientKey[:16])); err == nil {
			idx = binary.BigEndian.Uint64(raw[:]) % uint64(n)
		} else {
			idx = fnv64(patientKey) % uint64(n)
		}
	} else if patientKey != "" {
		idx = fnv64(patientKey) % uint64(n)
	}
	return fmt.Sprintf("p%0*d", width, idx)
}

// NoPatientPartition is the partition of messages without a patient identifier.
const NoPatientPartition = "p00"

// fnv64 is FNV-1a (hash/fnv), used only for keys that are not PatientKey output.
func fnv64(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// PartitionTokens returns the n partition tokens Partition produces, in
// order: "p00" … for up to 100 partitions, wider when there are more (n <= 0
// means DefaultPartitions).
func PartitionTokens(n int) []string {
	if n <= 0 {
		n = DefaultPartitions
	}
	width := 2
	for m := n - 1; m >= 100; m /= 10 {
		width++
	}
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("p%0*d", width, i)
	}
	return out
}
