package codec

import (
	"strings"
)

// NegotiateVersion picks the highest version in acceptVersion, the value of
// CONNECT's accept-version header, that stompgate speaks (semantics 2.2,
// rabbitmq_stomp processor negotiate_version/1). The value is a comma list;
// spaces around elements are ignored, and so are unknown versions.
// present=false means the header is absent, which means 1.0. ok=false means
// there is no common version: ERROR "Version mismatch".
func NegotiateVersion(acceptVersion string, present bool) (v Version, ok bool) {
	if !present {
		return Version10, true
	}
	best := VersionNone
	for elem := range strings.SplitSeq(acceptVersion, ",") {
		switch strings.Trim(elem, " ") {
		case "1.0":
			best = max(best, Version10)
		case "1.1":
			best = max(best, Version11)
		case "1.2":
			best = max(best, Version12)
		}
	}
	return best, best != VersionNone
}

// maxHeartBeat is the largest heart-beat value accepted (semantics 3).
const maxHeartBeat = 1<<31 - 1

// ParseHeartBeat parses CONNECT's heart-beat value "cx,cy" in milliseconds
// (semantics 3): each part [0-9]+ and at most 2^31−1. The error is a
// *ProtocolError (ERROR "Bad CONNECT", body "Invalid heart-beat header
// '<value>'") of Kind ErrBadHeartBeat.
func ParseHeartBeat(value string) (cx, cy int64, err error) {
	first, second, found := strings.Cut(value, ",")
	cx, okX := parseHeartBeatPart(first)
	cy, okY := parseHeartBeatPart(second)
	if !found || !okX || !okY {
		return 0, 0, &ProtocolError{
			Message: "Bad CONNECT",
			Detail:  "Invalid heart-beat header '" + truncated([]byte(value), quoteLimit) + "'\n",
			Kind:    ErrBadHeartBeat,
		}
	}
	return cx, cy, nil
}

func parseHeartBeatPart(s string) (int64, bool) {
	n, ok := parseContentLength(s) // the same grammar: [0-9]+ without overflow
	return n, ok && n <= maxHeartBeat
}
