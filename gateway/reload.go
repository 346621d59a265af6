package gateway

import (
	"context"

	"github.com/sirupsen/logrus"

	"github.com/stompgate/stompgate/gateway/config"
)

// reloadsKey is the context key of WithReloads.
type reloadsKey struct{}

// WithReloads returns a context carrying reloads: Run calls Server.Reload
// with each ACL configuration received (cmd/stompgate sends one per SIGHUP,
// from the re-read config file). A failed reload is logged and changes
// nothing.
func WithReloads(ctx context.Context, reloads <-chan config.ACLConfig) context.Context {
	return context.WithValue(ctx, reloadsKey{}, reloads)
}

// serveReloads applies the reloads carried by ctx to srv until ctx ends.
// Runs in its own goroutine, started by Run.
func serveReloads(ctx context.Context, srv *Server, log logrus.FieldLogger) {
	reloads, _ := ctx.Value(reloadsKey{}).(<-chan config.ACLConfig)
	if reloads == nil {
		return
	}
	for {
		select {
		case acl := <-reloads:
			if err := srv.Reload(acl); err != nil {
				log.WithError(err).Error("reload failed; the previous rules and keys stay in use")
			}
		case <-ctx.Done():
			return
		}
	}
}
