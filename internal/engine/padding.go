package engine

// Connection padding (padding-spec §2): the channel manager pads as C
// tor's ConnectionPadding auto does by default; each consensus brings
// the nf_* parameters (§2.6).

import (
	"github.com/gotor/gotor/internal/channel"
	"github.com/gotor/gotor/internal/netdir"
)

// notePaddingParams gives every channel the padding parameters of nd.
func (c *Engine) notePaddingParams(nd *netdir.NetDir) {
	if nd != nil {
		c.chans.SetPaddingParams(channel.PaddingParamsFrom(nd.Param))
	}
}
