// Package codectest holds the codec's fixture table: raw bytes ⇄ Frame per
// STOMP version, plus bad input with the exact error it must produce (style
// practice 3). The codec's decode, encode and fuzz tests use it, and so can
// the session tests, which feed Wire to a session and expect the ERROR that
// Err describes.
//
// Test support only. Goroutines: none. Imports: the standard library and
// gateway/codec.
package codectest
