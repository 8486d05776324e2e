package snmp

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// BenchmarkDecode is the reader's work per datagram before it is
// submitted: decode, then encode the raw event.
func BenchmarkDecode(b *testing.B) {
	dec, err := NewDecoder(testSettings(b))
	require.NoError(b, err)
	for _, name := range []string{"v2c_linkup", "v3_authpriv_sha_aes"} {
		pkt := readHex(b, "testdata/golden/"+name+".hex")
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p, err := dec.Decode(pkt, goldenFrom)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := json.Marshal(p.Trap); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
