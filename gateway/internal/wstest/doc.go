// Package wstest has the WebSocket client helpers shared by the tests of
// the ws and gateway packages: one bounded write and one bounded read of a
// whole message.
//
// Test support only. Goroutines: none. Imports: the standard library and
// github.com/coder/websocket.
package wstest
