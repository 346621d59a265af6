package gateway

import (
	"fmt"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/stompgate/stompgate/gateway/codec"
)

// transaction is a STOMP transaction buffered in the gateway (semantics
// 12): AMQP tx.select is never used. Owned by the session loop.
type transaction struct {
	actions []txAction
	bytes   int64
}

type txActionKind uint8

const (
	txSend txActionKind = iota
	txAck
	txNack
)

// txAction is one deferred SEND, ACK or NACK.
type txAction struct {
	kind txActionKind
	// SEND
	exchange, key string
	msg           amqp.Publishing
	receipt       string
	// ACK, NACK
	tag     string // consumer tag
	seq     uint64 // session-wide message number
	requeue bool
}

func missingTransaction(command string) error {
	return protocolError("Missing transaction", fmt.Sprintf("\"%s\" must include a 'transaction' header\n", command))
}

// transaction returns the open transaction id, or ERROR Bad transaction.
func (s *session) transaction(id string) (*transaction, error) {
	tx, ok := s.txs[id]
	if !ok {
		return nil, protocolError("Bad transaction", fmt.Sprintf("Invalid transaction identifier: \"%s\"\n", id))
	}
	return tx, nil
}

func (s *session) onBegin(f *codec.Frame) error {
	id, ok := f.Headers.Get("transaction")
	if !ok {
		return missingTransaction(codec.CmdBegin)
	}
	if _, open := s.txs[id]; open {
		return protocolError("Bad transaction", fmt.Sprintf("Transaction \"%s\" is already open\n", id))
	}
	if len(s.txs) >= s.cfg.Transactions.MaxOpen {
		return protocolError("Transaction limit exceeded", fmt.Sprintf("At most %d transactions may be open per session (transactions.max_open)\n", s.cfg.Transactions.MaxOpen))
	}
	s.txs = lazyMap(s.txs)
	s.txs[id] = &transaction{}
	s.sendReceipt(f)
	return nil
}

// bufferAction adds a deferred action within the limits of semantics 12.
func (s *session) bufferAction(tx *transaction, a txAction, bytes int64) error {
	if len(tx.actions) >= s.cfg.Transactions.MaxActions {
		return protocolError("Transaction limit exceeded", fmt.Sprintf("At most %d SEND/ACK/NACK frames may be buffered per transaction (transactions.max_actions)\n", s.cfg.Transactions.MaxActions))
	}
	if s.txBytes+bytes > s.cfg.Transactions.MaxBytes {
		return protocolError("Transaction limit exceeded", fmt.Sprintf("At most %d bytes may be buffered in transactions per session (transactions.max_bytes)\n", s.cfg.Transactions.MaxBytes))
	}
	tx.actions = append(tx.actions, a)
	tx.bytes += bytes
	s.txBytes += bytes
	return nil
}

// onCommit replays the transaction in frame order and forgets it. Its
// RECEIPT follows the confirm of its last publish, hence of all of them
// (confirms arrive in order). Not atomic against a broker failure
// mid-replay (semantics 12).
func (s *session) onCommit(f *codec.Frame) error {
	id, ok := f.Headers.Get("transaction")
	if !ok {
		return missingTransaction(codec.CmdCommit)
	}
	tx, err := s.transaction(id)
	if err != nil {
		return err
	}
	delete(s.txs, id)
	s.txBytes -= tx.bytes
	commitReceipt := f.Headers.Value("receipt")
	lastSend := -1
	for i, a := range tx.actions {
		if a.kind == txSend {
			lastSend = i
		}
	}
	for i, a := range tx.actions {
		switch a.kind {
		case txSend:
			cr := ""
			if i == lastSend {
				cr = commitReceipt
			}
			if err := s.publish(a.exchange, a.key, a.msg, a.receipt, cr); err != nil {
				return err
			}
		case txAck, txNack:
			sub, ok := s.subs[a.tag]
			if !ok || a.seq < sub.firstSeq {
				continue // canceled since (its messages were requeued)
			}
			if err := s.settle(sub, a); err != nil {
				return err
			}
		}
	}
	if lastSend < 0 {
		s.sendReceipt(f)
	}
	return nil
}

func (s *session) onAbort(f *codec.Frame) error {
	id, ok := f.Headers.Get("transaction")
	if !ok {
		return missingTransaction(codec.CmdAbort)
	}
	tx, err := s.transaction(id)
	if err != nil {
		return err
	}
	delete(s.txs, id)
	s.txBytes -= tx.bytes
	s.sendReceipt(f)
	return nil
}
