//go:build !unix

package gateway

import "syscall"

// closedByPeer cannot peek here: a closed kept-alive connection fails its POST, retried later.
func closedByPeer(syscall.RawConn) bool { return false }
