// Package ws is STOMP's WebSocket transport: Handler upgrades HTTP requests
// (offering the v12.stomp, v11.stomp and v10.stomp subprotocols, checking
// Origin) and hands each connection, as a Conn that implements net.Conn, to
// the session core, which runs the same code as for TCP.
//
// Goroutines: one read pump per Conn (Conn.pump), the only reader of its
// WebSocket, which ends when the connection closes.
//
// Imports: the standard library and github.com/coder/websocket. Never the
// session core (package gateway).
package ws
