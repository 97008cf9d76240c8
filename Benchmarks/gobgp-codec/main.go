// Runs GoBGP's packet library (Debian's golang-github-osrg-gobgp-dev, 3.10) on the same UPDATE bytes
// as bagpipe-bench, so both are measured in one run. Prints one JSON line per message.
//
//	GOPATH=/usr/share/gocode GO111MODULE=off go run main.go FILE.hex... (GOPATH mode: Debian installs the v3 tree without the /v3 suffix)
package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/osrg/gobgp/pkg/packet/bgp"
)

type result struct {
	File             string  `json:"file"`
	NLRI             int     `json:"nlri"`
	DecodeNLRIPerSec float64 `json:"decode_nlri_per_s"`
	DecodeHeapPerNLRI float64 `json:"decode_heap_bytes_per_nlri"`
	EncodeNLRIPerSec float64 `json:"encode_nlri_per_s"`
	EncodeHeapPerNLRI float64 `json:"encode_heap_bytes_per_nlri"`
}

func measure(seconds float64, body func()) (perSecond float64, allocPerCall float64) {
	// Warm up, then run for the requested time.
	for i := 0; i < 100; i++ {
		body()
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	calls := 0
	start := time.Now()
	for time.Since(start).Seconds() < seconds {
		for i := 0; i < 100; i++ {
			body()
		}
		calls += 100
	}
	elapsed := time.Since(start).Seconds()
	runtime.ReadMemStats(&after)
	return float64(calls) / elapsed, float64(after.TotalAlloc-before.TotalAlloc) / float64(calls)
}

func main() {
	seconds := 2.0
	for _, file := range os.Args[1:] {
		text, err := os.ReadFile(file)
		if err != nil {
			panic(err)
		}
		data, err := hex.DecodeString(strings.TrimSpace(string(text)))
		if err != nil {
			panic(err)
		}
		msg, err := bgp.ParseBGPMessage(data)
		if err != nil {
			panic(err)
		}
		nlri := 0
		for _, a := range msg.Body.(*bgp.BGPUpdate).PathAttributes {
			if r, ok := a.(*bgp.PathAttributeMpReachNLRI); ok {
				nlri = len(r.Value)
			}
		}
		sink := 0
		decodeRate, decodeAlloc := measure(seconds, func() {
			m, err := bgp.ParseBGPMessage(data)
			if err != nil {
				panic(err)
			}
			sink += int(m.Header.Len)
		})
		encodeRate, encodeAlloc := measure(seconds, func() {
			out, err := msg.Serialize()
			if err != nil {
				panic(err)
			}
			sink += len(out)
		})
		r := result{File: file, NLRI: nlri, DecodeNLRIPerSec: decodeRate * float64(nlri), DecodeHeapPerNLRI: decodeAlloc / float64(nlri),
			EncodeNLRIPerSec: encodeRate * float64(nlri), EncodeHeapPerNLRI: encodeAlloc / float64(nlri)}
		line, _ := json.Marshal(r)
		fmt.Println(string(line))
		if sink == 42 {
			fmt.Fprintln(os.Stderr, "")
		}
	}
}
