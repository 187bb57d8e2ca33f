//go:build unix

package gateway

import "syscall"

// closedByPeer peeks, without waiting, at an idle connection: at its end (the receiver closed it),
// or at bytes nobody asked for, or at an error. Nothing pending is the one healthy answer.
func closedByPeer(rc syscall.RawConn) bool {
	var buf [1]byte
	var err error
	if cerr := rc.Read(func(fd uintptr) bool {
		_, _, err = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true
	}); cerr != nil {
		return true
	}
	switch err {
	case nil:
		return true // 0 bytes: the end; more: bytes nobody asked for
	case syscall.EAGAIN, syscall.EINTR:
		return false
	}
	return true
}
