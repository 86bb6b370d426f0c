package echopb

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc"
)

// Service is the Echo service, written once for the example, its tests
// and the benchmark: it knows nothing of the transport under it.
type Service struct{ UnimplementedEchoServer }

// Echo returns its request.
func (Service) Echo(_ context.Context, m *Msg) (*Msg, error) { return m, nil }

// Stream sends back each message it receives, until the client's end.
func (Service) Stream(s grpc.BidiStreamingServer[Msg, Msg]) error {
	for {
		m, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := s.Send(m); err != nil {
			return err
		}
	}
}
