package gateway

// Temporary stub so the package builds while the session is written.
// Owned by the lead; replaced by session.go.

import (
	"errors"
	"net"

	"github.com/sirupsen/logrus"
)

var errTooManyConnections = errors.New("too many connections")

type session struct{ conn net.Conn }

func newSession(cfg Config, conn net.Conn, log logrus.FieldLogger) *session {
	return &session{conn: conn}
}
func (s *session) run()           { _ = s.conn.Close() }
func (s *session) reject(error)   { _ = s.conn.Close() }
func (s *session) shutdown()      { _ = s.conn.Close() }
func (s *session) kill()          { _ = s.conn.Close() }
func (c *Config) Validate() error { return nil }
