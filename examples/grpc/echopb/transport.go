package echopb

import (
	"context"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"mproc/shmnet"
)

// Transports by name, for the example, its tests and the benchmark: a
// "shmnet" or "unix" address is a socket path, a "tcp" one host:port.

// Listen listens on network at addr.
func Listen(network, addr string) (net.Listener, error) {
	if network == "shmnet" {
		return shmnet.Listen(addr, nil)
	}
	return net.Listen(network, addr)
}

// Dial connects to addr on network.
func Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if network == "shmnet" {
		return shmnet.Dial(ctx, addr, nil)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// NewClient is a gRPC client whose connections are made by Dial: the same
// client code over every transport.
func NewClient(network, addr string) (*grpc.ClientConn, error) {
	return grpc.NewClient("passthrough:///"+network,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return Dial(ctx, network, addr)
		}))
}
