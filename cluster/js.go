package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"mproc"
)

// What this file holds: the JetStream calls every queue and pool makes,
// with the policy for failures in one place.
//
//   - A publish carries a Nats-Msg-Id made once per logical message, so a
//     retry after a timeout or a failover (the first attempt may have
//     landed) is a duplicate the stream drops (its window: 2 minutes).
//   - A pull asks for one message at a time (no client-side buffer whose
//     messages would age toward AckWait unseen), for at most pullSlice.
//     A pull that is still open at the server when its caller gives up
//     may yet deliver a message: a goroutine waits out the pull and hands
//     such a message straight back (Nak). That delivery counts toward
//     MaxDeliver, like any other.

const (
	// pullSlice is the longest single pull request.
	pullSlice = 2 * time.Second
	// attemptTimeout bounds one request/reply when the caller's context
	// has a later deadline or none, so that a request lost in a failover
	// is retried.
	attemptTimeout = 5 * time.Second
	// minBackoff and maxBackoff bound the waits between retries and
	// between polls (a full queue, Join).
	minBackoff = 2 * time.Millisecond
	maxBackoff = 100 * time.Millisecond
)

// Headers of queue and pool messages.
const (
	hdrMsgID = "Nats-Msg-Id"
)

// transient reports whether err is what a failover or a reconnection
// causes, so that the same request may be retried.
func transient(err error) bool {
	if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrConnectionReconnecting) || errors.Is(err, nats.ErrDisconnected) ||
		errors.Is(err, jetstream.ErrConsumerLeadershipChanged) || errors.Is(err, jetstream.ErrNoHeartbeat) {
		return true
	}
	var api *jetstream.APIError
	if errors.As(err, &api) {
		// 503s are "temporarily unavailable" (no leader, no quorum),
		// except a full stream, which the callers handle.
		return api.Code == 503 && !isFull(err)
	}
	return false
}

// isFull reports whether the server refused a message because the stream
// is at MaxMsgs or MaxBytes with DiscardNew.
func isFull(err error) bool {
	var api *jetstream.APIError
	if !errors.As(err, &api) || api.ErrorCode != 10077 {
		return false
	}
	return strings.Contains(api.Description, "maximum messages") || strings.Contains(api.Description, "maximum bytes")
}

// isTooLarge reports whether the server or the client refused a message
// for its size.
func isTooLarge(err error) bool {
	var api *jetstream.APIError
	return errors.Is(err, nats.ErrMaxPayload) ||
		errors.As(err, &api) && api.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum
}

// gone maps the errors of a connection closed under a call to os.ErrClosed.
func gone(err error) error {
	if errors.Is(err, nats.ErrConnectionClosed) {
		return fmt.Errorf("%w: %w", os.ErrClosed, err)
	}
	return err
}

// publish stores msg, retrying transient failures until ctx ends. msg
// must carry a Nats-Msg-Id. When no stream answers for a second, publish
// asks whether one still takes the subject: a removed queue or pool
// gives an error wrapping os.ErrNotExist instead of a wait.
func publish(ctx context.Context, js jetstream.JetStream, msg *nats.Msg) (*jetstream.PubAck, error) {
	var silent time.Time // since when no stream answered
	for wait := minBackoff; ; wait = min(2*wait, maxBackoff) {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		ack, err := js.PublishMsg(actx, msg)
		cancel()
		if err == nil {
			return ack, nil
		}
		if !transient(err) || ctx.Err() != nil {
			return nil, gone(err)
		}
		if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
			if silent.IsZero() {
				silent = time.Now()
			} else if time.Since(silent) > time.Second {
				silent = time.Now()
				_, serr := js.StreamNameBySubject(ctx, msg.Subject)
				if errors.Is(serr, jetstream.ErrStreamNotFound) {
					return nil, fmt.Errorf("no stream takes %s: %w", msg.Subject, os.ErrNotExist)
				}
			}
		}
		if sleep(ctx, wait) != nil {
			return nil, fmt.Errorf("%w (last attempt: %w)", ctx.Err(), err)
		}
	}
}

// ack acknowledges m and waits for the server to confirm it (replicated,
// in a cluster), retrying transient failures until ctx ends. Once it
// returns nil, m will not be delivered again.
func ack(ctx context.Context, m jetstream.Msg) error {
	for wait := minBackoff; ; wait = min(2*wait, maxBackoff) {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		err := m.DoubleAck(actx)
		cancel()
		if err == nil {
			return nil
		}
		if !transient(err) || ctx.Err() != nil {
			return gone(err)
		}
		if sleep(ctx, wait) != nil {
			return fmt.Errorf("%w (last attempt: %w)", ctx.Err(), err)
		}
	}
}

// permanentPull reports a pull error that retrying cannot cure.
func permanentPull(err error) bool {
	return errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) ||
		errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrBadSubscription)
}

// pull waits for the next message of cons until ctx ends (then ctx's
// error). With wait false it asks once, for a message ready now, and
// returns nil, nil if there is none.
func pull(ctx context.Context, cons jetstream.Consumer, wait bool) (jetstream.Msg, error) {
	backoff := minBackoff
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var b jetstream.MessageBatch
		var err error
		if wait {
			slice := pullSlice
			if d, ok := ctx.Deadline(); ok {
				slice = max(min(slice, time.Until(d)), 10*time.Millisecond)
			}
			b, err = cons.Fetch(1, jetstream.FetchMaxWait(slice))
		} else {
			b, err = cons.FetchNoWait(1)
		}
		if err == nil {
			select {
			case m, ok := <-b.Messages():
				if ok {
					return m, nil
				}
				err = b.Error()
				if err == nil {
					if !wait {
						return nil, nil
					}
					backoff = minBackoff
					continue // the pull expired empty
				}
			case <-ctx.Done():
				go func() {
					for m := range b.Messages() {
						m.Nak()
					}
				}()
				return nil, ctx.Err()
			}
		}
		if permanentPull(err) {
			return nil, gone(err)
		}
		if sleep(ctx, backoff) != nil {
			return nil, ctx.Err()
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// heartbeatEvery is how often a holder tells the server it still works on
// a message (InProgress), for a consumer of the given AckWait: three times
// per AckWait, so that two lost heartbeats do not cost a redelivery.
func heartbeatEvery(ackWait time.Duration) time.Duration {
	return max(ackWait/3, 10*time.Millisecond)
}

// codecOf returns how values of T cross: raw bytes for []byte and string
// kinds (nil codec), c (or mproc.DefaultCodec) for anything else. Unlike
// the local queue, fixed-size values are encoded too: the bytes may reach
// another machine.
type valueCodec[T any] struct {
	raw   int // 0: codec, 1: []byte, 2: string kind
	codec mproc.Codec
}

func newValueCodec[T any](c mproc.Codec) valueCodec[T] {
	t := reflect.TypeFor[T]()
	switch {
	case t == reflect.TypeFor[[]byte]():
		return valueCodec[T]{raw: 1}
	case t.Kind() == reflect.String:
		return valueCodec[T]{raw: 2}
	}
	if c == nil {
		c = mproc.DefaultCodec
	}
	return valueCodec[T]{codec: c}
}

func (vc valueCodec[T]) encode(v T) ([]byte, error) {
	switch vc.raw {
	case 1:
		return any(v).([]byte), nil
	case 2:
		return []byte(reflect.ValueOf(v).String()), nil
	}
	b, err := vc.codec.Marshal(&v)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", v, err)
	}
	return b, nil
}

func (vc valueCodec[T]) decode(b []byte) (T, error) {
	var v T
	switch vc.raw {
	case 1:
		*any(&v).(*[]byte) = b
	case 2:
		reflect.ValueOf(&v).Elem().SetString(string(b))
	default:
		if err := vc.codec.Unmarshal(b, &v); err != nil {
			return v, fmt.Errorf("decode %T: %w", v, err)
		}
	}
	return v, nil
}
