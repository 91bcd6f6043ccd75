package client

import (
	"testing"

	"github.com/gotor/gotor/internal/errkind"
)

// The public kinds are errkind's, value for value.
func TestErrorKindsMatchErrkind(t *testing.T) {
	pairs := []struct {
		pub ErrorKind
		in  errkind.Kind
	}{
		{ErrOther, errkind.Other}, {ErrNotRunning, errkind.NotRunning}, {ErrBadRequest, errkind.BadRequest},
		{ErrNoCircuit, errkind.NoCircuit}, {ErrTimeout, errkind.Timeout}, {ErrExitPolicy, errkind.ExitPolicy},
		{ErrConnectionRefused, errkind.ConnectionRefused}, {ErrResolveFailed, errkind.ResolveFailed},
		{ErrHostUnreachable, errkind.HostUnreachable}, {ErrStreamClosed, errkind.StreamClosed},
		{ErrInternalAddress, errkind.InternalAddress}, {ErrOnionNotFound, errkind.OnionDescNotFound},
		{ErrOnionDescInvalid, errkind.OnionDescInvalid}, {ErrOnionIntroFailed, errkind.OnionIntroFailed},
		{ErrOnionRendFailed, errkind.OnionRendFailed}, {ErrOnionAuthRequired, errkind.OnionAuthRequired},
		{ErrOnionAuthBad, errkind.OnionAuthBad}, {ErrOnionBadAddress, errkind.OnionBadAddress},
		{ErrOnionIntroTimeout, errkind.OnionIntroTimeout},
	}
	for _, p := range pairs {
		if int(p.pub) != int(p.in) {
			t.Errorf("%v is %d, errkind's %v is %d", p.pub, p.pub, p.in, p.in)
		}
	}
	if len(pairs) != int(errkind.OnionIntroTimeout)+1 {
		t.Errorf("%d kinds mirrored, errkind has %d", len(pairs), errkind.OnionIntroTimeout+1)
	}
}
