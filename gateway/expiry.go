package gateway

import "time"

// Token expiry on the writer's side (issue 13): no MESSAGE is written
// after the session's token expires. The session loop arms a timer for the
// same instant and ends the session with ERROR "Token expired"; between the
// instant and the loop noticing it, the writer takes nothing (take checks
// cutoff), and the loop then drops what was queued (expire) before it
// queues the ERROR.

// setCutoff sets the instant from which nothing queued is written; the
// zero time removes it. Only the session loop calls it (CONNECT, renewal).
func (o *outbound) setCutoff(t time.Time) {
	o.mu.Lock()
	o.cutoff = t
	o.mu.Unlock()
}

// pastCutoffLocked reports whether the cutoff has passed. Called with mu held.
func (o *outbound) pastCutoffLocked() bool {
	return !o.cutoff.IsZero() && !time.Now().Before(o.cutoff)
}

// expire drops every frame not yet taken by the writer (their ack:auto
// deliveries stay unacked and return to their queues when the AMQP
// connection closes) and lifts the cutoff, so that the ERROR queued next is
// written. Only the session loop calls it, right before it returns
// errTokenExpired.
func (o *outbound) expire() {
	o.mu.Lock()
	defer o.mu.Unlock()
	clear(o.refs)
	clear(o.acks)
	o.pending, o.ends, o.refs, o.acks = o.pending[:0], o.ends[:0], o.refs[:0], o.acks[:0]
	o.refBytes = 0
	o.cutoff = time.Time{}
}

// pastCutoff reports whether the token's expiry has passed (and the loop
// has not yet dropped what was queued).
func (o *outbound) pastCutoff() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.pastCutoffLocked()
}
