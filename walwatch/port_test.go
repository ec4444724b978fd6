package walwatch_test

import "net"

type netListener struct{}

// listen returns a port the kernel says is free on 127.0.0.1.
func (netListener) listen() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
