// Package testpki makes a throwaway CA, a server certificate for
// 127.0.0.1/localhost and a client certificate, as PEM files, for the TLS
// tests of the gateway and config packages.
//
// Test support only. Goroutines: none. Imports: the standard library.
package testpki
