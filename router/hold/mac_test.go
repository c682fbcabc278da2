package hold

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"testing"
)

// TestKeysWithPooledMAC: the pooled HMAC states give the keys hmac.New
// gives, for two secrets used at once from many goroutines (a state is
// never shared between secrets or left with another message's bytes).
func TestKeysWithPooledMAC(t *testing.T) {
	ref := func(secret []byte, parts ...string) string {
		m := hmac.New(sha256.New, secret)
		for _, p := range parts {
			m.Write([]byte(p))
		}
		return hex.EncodeToString(m.Sum(nil))
	}
	secrets := [][]byte{[]byte("secret-one"), []byte("secret-two")}
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				s := secrets[(g+i)%2]
				v := fmt.Sprintf("msg-%d-%d", g, i)
				if got, want := HoldID(s, v), "h"+ref(s, "hold", "\x00", v)[:24]; got != want {
					errs <- fmt.Sprintf("HoldID(%s, %s) = %s, want %s", s, v, got, want)
					return
				}
				if got, want := PatientKey(s, v), ref(s, v)[:PatientKeyLen]; got != want {
					errs <- fmt.Sprintf("PatientKey(%s, %s) = %s, want %s", s, v, got, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
